"""A partial index of the items not yet settled, so that "is this deployment settled?"
(asked at every event) finds one such item, or none, without reading the deployment's
items: O(1) whatever the job's size.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UNSETTLED = sa.text("status NOT IN ('done', 'failed')")


def upgrade() -> None:
    op.create_index(
        "ix_job_items_unsettled",
        "job_items",
        ["job_id", "stage", "grp"],
        postgresql_where=UNSETTLED,
        sqlite_where=UNSETTLED,
    )


def downgrade() -> None:
    op.drop_index("ix_job_items_unsettled", "job_items")
