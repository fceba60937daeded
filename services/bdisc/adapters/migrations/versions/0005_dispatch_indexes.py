"""Partial indexes for capped dispatch (``app/embed_dispatch.py``): a project's items
waiting to be sent (``pending``, in key order) and its items in flight (``running``) are
found without reading the settled items of a big job: O(what is asked), whatever the
job's size.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

WAITING = sa.text("status = 'pending'")
IN_FLIGHT = sa.text("status = 'running'")


def upgrade() -> None:
    op.create_index(
        "ix_job_items_waiting",
        "job_items",
        ["job_id", "stage", "key"],
        postgresql_where=WAITING,
        sqlite_where=WAITING,
    )
    op.create_index(
        "ix_job_items_in_flight",
        "job_items",
        ["job_id", "stage"],
        postgresql_where=IN_FLIGHT,
        sqlite_where=IN_FLIGHT,
    )
    op.create_index("ix_jobs_project_status", "jobs", ["project", "status"])


def downgrade() -> None:
    op.drop_index("ix_jobs_project_status", "jobs")
    op.drop_index("ix_job_items_in_flight", "job_items")
    op.drop_index("ix_job_items_waiting", "job_items")
