"""Only the migrate Job changes the shared schema: the gateway and the orchestrator wait
for it at start-up, say what to run when it does not come, and refuse a database that a
newer release migrated (real PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from bdisc.adapters.schema_gate import MIGRATE_COMMAND, await_schema
from bdisc.adapters.sql_job_store import migrate
from bdisc.errors import ConfigError

from ..conftest import PG_ADMIN_URL

pytestmark = pytest.mark.integration


@pytest.fixture
def empty_database(postgres_url: str) -> Iterator[str]:
    """A new database nothing has migrated."""
    name = f"bdisc_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_services_wait_for_the_migration_and_never_run_it(empty_database: str) -> None:
    with pytest.raises(ConfigError, match="migrations first") as err:
        await_schema(empty_database, timeout_s=0.5, poll_s=0.1)
    assert MIGRATE_COMMAND in str(err.value) and "none (empty)" in str(err.value)
    assert tables(empty_database) == set()  # waiting changed nothing

    # The Job runs while a service waits: the service goes on as soon as it is done.
    job = threading.Timer(1.0, migrate, args=(empty_database,))
    job.start()
    started = time.monotonic()
    await_schema(empty_database, timeout_s=60, poll_s=0.2)
    job.join()
    assert 1.0 <= time.monotonic() - started < 30
    assert {"jobs", "job_items"} <= tables(empty_database)


def test_a_schema_a_newer_release_made_is_refused_at_once(empty_database: str) -> None:
    migrate(empty_database)
    engine = sa.create_engine(empty_database)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'a_newer_release'"))
    engine.dispose()
    started = time.monotonic()
    with pytest.raises(ConfigError, match="newer release"):
        await_schema(empty_database, timeout_s=60, poll_s=0.2)
    assert time.monotonic() - started < 10


def test_the_gateway_does_not_migrate_a_database(empty_database: str) -> None:
    env = {
        **os.environ,
        "BDISC_DATABASE_URL": empty_database,
        "BDISC_RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/%2F",
        "BDISC_S3_ENDPOINT": "127.0.0.1:1",
        "BDISC_S3_ACCESS_KEY": "test",
        "BDISC_S3_SECRET_KEY": "test-secret",
        "BDISC_SCHEMA_WAIT_S": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "create-project", "early"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert MIGRATE_COMMAND in done.stderr
    assert tables(empty_database) == set()
