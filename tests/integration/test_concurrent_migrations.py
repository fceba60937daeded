"""Services that start together migrate a new PostgreSQL database one after the other
(an advisory lock in the migration environment): none fails on tables another is
creating at the same time."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa

from bdisc.adapters.sql_job_store import SqlJobStore

from ..conftest import PG_ADMIN_URL

pytestmark = pytest.mark.integration

MIGRATE = "import sys; from bdisc.adapters.sql_job_store import migrate; migrate(sys.argv[1])"


def test_services_starting_together_migrate_a_new_database_once(postgres_url: str) -> None:
    name = f"bdisc_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        starts = [
            subprocess.Popen(
                [sys.executable, "-c", MIGRATE, url], stderr=subprocess.PIPE, text=True
            )
            for _ in range(4)
        ]
        for started in starts:
            _, err = started.communicate(timeout=120)
            assert started.returncode == 0, err[-2000:]
        SqlJobStore(url).engine.dispose()  # at head: the store starts
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
