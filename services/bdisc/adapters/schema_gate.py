"""Services wait for the migration Job (``python -m bdisc.service.migrate_db``, a compose
one-shot or a Kubernetes Job): they never change the shared database's schema themselves,
so replicas starting together do not race it, and a service of an older release never
runs against a newer schema."""

from __future__ import annotations

import logging
import threading
import time

from bdisc.adapters.sql_job_store import SqlJobStore, head_revision, known_revisions
from bdisc.errors import ConfigError, Retryable
from bdisc.logs import fields

log = logging.getLogger(__name__)

MIGRATE_COMMAND = "python -m bdisc.service.migrate_db"


def await_schema(
    url: str, timeout_s: float, *, poll_s: float = 2.0, stop: threading.Event | None = None
) -> bool:
    """True once the database is at this code's schema revision; wait up to
    ``timeout_s`` for the migration to run (or the database to come up); False if
    ``stop`` is set meanwhile (the service is shutting down). ConfigError at once for a
    revision this code does not know (a newer release migrated it), and after the wait
    for a database still behind."""
    known, head = known_revisions(), head_revision()
    store = SqlJobStore(url, check_schema=False)
    deadline = time.monotonic() + timeout_s
    said = False
    try:
        while True:
            try:
                current: str | None = store.revision()
                reason = f"at revision {current or 'none (empty)'}"
            except Retryable as exc:
                current, reason = None, f"unreachable ({exc.message.splitlines()[0]})"
            if current == head:
                return True
            if stop is not None and stop.is_set():
                return False
            if current is not None and current not in known:
                raise ConfigError(
                    f"the job database is at revision {current}, which this release does "
                    f"not know (it expects {head}): a newer release migrated it"
                )
            if time.monotonic() >= deadline:
                raise ConfigError(
                    f"the job database is {reason}; this release needs {head}: run the "
                    f"migrations first ({MIGRATE_COMMAND}, the migrate Job)"
                )
            if not said:
                log.info(
                    "waiting for the database migration", extra=fields(state=reason, needs=head)
                )
                said = True
            if stop is not None:
                stop.wait(poll_s)
            else:
                time.sleep(poll_s)
    finally:
        store.engine.dispose()
