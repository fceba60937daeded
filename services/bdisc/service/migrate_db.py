"""``python -m bdisc.service.migrate_db``: bring the job database to the code's schema.

Run once per release before the services start (a compose one-shot, a Kubernetes Job).
Nothing else changes the schema: the gateway and orchestrator wait for it at start-up
(``BDISC_SCHEMA_WAIT_S``, ``bdisc.adapters.schema_gate``). Concurrent runs are serialised
by an advisory lock (``migrations/env.py``).
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
