"""``python -m bdisc.service.migrate_db``: bring the job database to the code's schema.

Run once per release before the services start (a compose one-shot, a Kubernetes Job);
the gateway and orchestrator also migrate at start-up, so this is belt and braces.
"""

from __future__ import annotations

import logging
import sys

from bdisc.adapters.sql_job_store import head_revision, migrate
from bdisc.errors import BdiscError
from bdisc.logs import configure, fields
from bdisc.service.settings import DatabaseSettings, load

log = logging.getLogger(__name__)


def main() -> int:
    try:
        settings = load(DatabaseSettings)
        configure(settings.log_level, settings.log_format)
        migrate(settings.database_url)
    except BdiscError as exc:
        sys.stderr.write(f"migrate: {exc.message}\n")
        return 2
    log.info("database migrated", extra=fields(revision=head_revision()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
