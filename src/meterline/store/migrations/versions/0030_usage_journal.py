"""usage_journal: usage folded by the engine and merged into the usage tables many batches at once

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07 23:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_journal",
        sa.Column("shard", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("through_seq", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("deltas", sa.Integer(), nullable=False),
        sa.Column("written_at_us", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("shard", "through_seq"),
    )


def downgrade() -> None:
    # Rows left would be usage counted nowhere else: merge them first (`meterline` flushes them
    # when its engine stops); a downgrade of a database with rows refuses.
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM usage_journal")).scalar_one():
        raise RuntimeError("usage_journal holds usage not yet merged; run the engine to flush it first")
    op.drop_table("usage_journal")
