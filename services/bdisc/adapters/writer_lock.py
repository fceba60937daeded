"""One orchestrator writes at a time: a PostgreSQL session advisory lock.

The job store has one writer by design (``ports/job_store.py``). A second orchestrator
(a rolling update's new pod, a replica started by mistake) waits for the lock before it
consumes a single event: it is a standby that takes over within ``poll_s`` of the
holder's death, because a session lock goes with its connection. The holder watches its
lock's connection every ``check_every_s``; a connection that is gone (PostgreSQL
restarted, the session killed) means the lock may now be another orchestrator's, so the
holder stops at once (``on_lost``: exit the process; the supervisor restarts it and it
waits for the lock again; its unacknowledged events are redelivered to the new holder).
The holder checks every second, more often than a standby polls, and a half-open
connection fails the check within seconds.
SQLite (embedded runs: one process) needs no lock.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

import sqlalchemy as sa

from bdisc.logs import fields

log = logging.getLogger(__name__)

LOCK_ID = 0x62646973634F  # "bdiscO": the orchestrator's lock, the same in every release
LOST_EXIT_CODE = 3


def _exit_now() -> None:
    os._exit(LOST_EXIT_CODE)  # not a clean shutdown on purpose: no more writes at all


class WriterLock:
    def __init__(
        self,
        database_url: str,
        *,
        poll_s: float = 2.0,
        check_every_s: float = 1.0,
        on_lost: Callable[[], None] = _exit_now,
    ) -> None:
        # A half-open connection (a network partition) must fail the watch's query, not
        # hang it: TCP keepalives and a statement timeout on the lock's session.
        connect_args = (
            {
                "keepalives": 1,
                "keepalives_idle": 5,
                "keepalives_interval": 2,
                "keepalives_count": 2,
                "options": "-c statement_timeout=3000",
            }
            if database_url.startswith("postgresql")
            else {}
        )
        self.engine = sa.create_engine(
            database_url, poolclass=sa.pool.NullPool, connect_args=connect_args
        )
        self.poll_s, self.check_every_s, self.on_lost = poll_s, check_every_s, on_lost
        self._conn: sa.Connection | None = None
        self._released = threading.Event()
        self._using = threading.Lock()  # the watch and release share the lock's connection

    @property
    def needed(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for the lock (True), or for ``stop`` (False); then watch it."""
        if not self.needed:
            return True
        waiting = False
        while not stop.is_set():
            conn = self.engine.connect()
            try:
                got = conn.execute(sa.select(sa.func.pg_try_advisory_lock(LOCK_ID))).scalar()
                conn.commit()  # session locks outlive transactions; none stays open
            except BaseException:
                conn.close()
                raise
            if got:
                self._conn = conn
                log.info("writer lock held", extra=fields(lock=LOCK_ID))
                threading.Thread(target=self._watch, name="writer-lock", daemon=True).start()
                return True
            conn.close()
            if not waiting:
                log.info("another orchestrator writes: waiting for the writer lock")
                waiting = True
            stop.wait(self.poll_s)
        return False

    def _watch(self) -> None:
        while not self._released.wait(self.check_every_s):
            try:
                with self._using:
                    if self._conn is None:  # released meanwhile
                        return
                    self._conn.execute(sa.text("SELECT 1"))
                    self._conn.commit()
            except Exception as exc:  # whatever the driver says: the session is gone
                if self._released.is_set():
                    return
                log.error("writer lock lost: stopping", extra=fields(error=str(exc)[:200]))
                self.on_lost()
                return

    def release(self) -> None:
        self._released.set()
        with self._using:
            if self._conn is not None:
                try:
                    self._conn.execute(sa.select(sa.func.pg_advisory_unlock(LOCK_ID)))
                    self._conn.commit()
                except sa.exc.SQLAlchemyError:
                    pass  # the connection is gone, and the lock with it
                finally:
                    self._conn.close()
                    self._conn = None
        self.engine.dispose()
