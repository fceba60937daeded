"""``python -m bdisc.service.migrate_db``: bring the job database to the code's schema.

Run once per release before the services start (a compose one-shot, a Kubernetes Job).
Nothing else changes the schema: the gateway and orchestrator wait for it at start-up
(``BDISC_SCHEMA_WAIT_S``, ``bdisc.adapters.schema_gate``). Concurrent runs are serialised
by an advisory lock (``migrations/env.py``).
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bdisc.adapters.sql_job_store import head_revision, migrate
from bdisc.errors import BdiscError
from bdisc.logs import configure, fields
from bdisc.service.settings import load, refuse_placeholder

log = logging.getLogger(__name__)


class MigrateSettings(BaseSettings):
    """The database alone: the migration reaches neither the broker nor the store."""

    model_config = SettingsConfigDict(env_prefix="BDISC_", extra="ignore")

    database_url: str = Field(description="postgresql+psycopg://... or sqlite:///path")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "json"

    @field_validator("database_url")
    @classmethod
    def _not_a_placeholder(cls, value: object) -> object:
        return refuse_placeholder(value)


def main() -> int:
    try:
        settings = load(MigrateSettings)
        configure(settings.log_level, settings.log_format)
        migrate(settings.database_url)
    except BdiscError as exc:
        sys.stderr.write(f"migrate: {exc.message}\n")
        return 2
    log.info("database migrated", extra=fields(revision=head_revision()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
