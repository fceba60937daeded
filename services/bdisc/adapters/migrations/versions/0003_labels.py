"""Labels as data: the current label of every target, each sheet's revision, and the
history of every change.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "label_sheets",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("folder", sa.String(256), primary_key=True),
        sa.Column("revision", sa.Integer, nullable=False),
    )
    op.create_table(
        "labels",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("folder", sa.String(256), primary_key=True),
        sa.Column("target", sa.String(1200), primary_key=True),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "label_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("folder", sa.String(256), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("target", sa.String(1200), nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("previous", sa.Text, nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_by", sa.Integer, nullable=False),
    )
    op.create_index("ix_label_changes_sheet", "label_changes", ["job_id", "folder", "revision"])


def downgrade() -> None:
    op.drop_index("ix_label_changes_sheet", table_name="label_changes")
    op.drop_table("label_changes")
    op.drop_table("labels")
    op.drop_table("label_sheets")
