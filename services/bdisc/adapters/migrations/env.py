"""Alembic environment: migrations run programmatically via ``sql_job_store.migrate``.

On PostgreSQL the migration holds a transaction-level advisory lock, so services that
start together (gateway, orchestrator, the migration Job) migrate one after the other:
the second finds the schema at head and does nothing, instead of creating the same
tables at the same time and failing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

MIGRATION_LOCK = 0x62646973_6D696772  # "bdismigr": one migration at a time

url = context.config.get_main_option("sqlalchemy.url")
assert url is not None
engine = sa.create_engine(url)
with engine.begin() as connection:
    if connection.dialect.name == "postgresql":  # released when the transaction ends
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
