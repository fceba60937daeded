"""One orchestrator writes at a time (the machine's real PostgreSQL): a second waits as a
standby and takes over when the holder's session ends; a holder whose session is killed
stops."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from bdisc.adapters.writer_lock import LOCK_ID, WriterLock


@pytest.mark.integration
def test_a_second_orchestrator_waits_until_the_first_lets_go(postgres_url: str) -> None:
    stop = threading.Event()
    first = WriterLock(postgres_url, poll_s=0.1)
    second = WriterLock(postgres_url, poll_s=0.1)
    assert first.acquire(stop)
    took = threading.Event()
    standby = threading.Thread(target=lambda: second.acquire(stop) and took.set())
    standby.start()
    try:
        assert not took.wait(1.0)  # a standby: it consumes nothing while the first holds
        first.release()
        assert took.wait(5.0)
    finally:
        stop.set()
        standby.join(5)
        second.release()


@pytest.mark.integration
def test_a_holder_whose_session_is_killed_stops(postgres_url: str) -> None:
    lost = threading.Event()
    lock = WriterLock(postgres_url, check_every_s=0.2, on_lost=lost.set)
    assert lock.acquire(threading.Event())
    try:
        admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            holders = (
                conn.execute(
                    sa.text(
                        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                        "AND ((classid::bigint << 32) | objid::bigint) = :id AND database "
                        "= (SELECT oid FROM pg_database WHERE datname = current_database())"
                    ),
                    {"id": LOCK_ID},
                )
                .scalars()
                .all()
            )
            assert len(holders) == 1
            assert not lost.wait(0.5)  # held and watched: nothing happens
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": holders[0]})
        admin.dispose()
        assert lost.wait(5.0)
        # the lock went with the session: a standby takes it at once
        standby = WriterLock(postgres_url, poll_s=0.1)
        stop = threading.Event()
        timer = threading.Timer(5.0, stop.set)
        timer.start()
        began = time.monotonic()
        assert standby.acquire(stop) and time.monotonic() - began < 5.0
        timer.cancel()
        standby.release()
    finally:
        lock.release()


def test_embedded_runs_need_no_lock(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lock = WriterLock(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    assert not lock.needed and lock.acquire(threading.Event())
    lock.release()
