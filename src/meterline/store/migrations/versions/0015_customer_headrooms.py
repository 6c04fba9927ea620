"""customer_headrooms, and usage_monthly.folded_seq (the highest log position folded into a row).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows from before: folded before any headroom could be stored, so -1 is true of them (and
    # a constant default adds the column without rewriting the table).
    op.add_column(
        "usage_monthly",
        sa.Column("folded_seq", sa.BigInteger(), nullable=False, server_default=sa.text("-1")),
    )
    op.create_table(
        "customer_headrooms",
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("as_of_seq", sa.BigInteger(), nullable=False),
        sa.Column("catalog_version", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id"),
    )


def downgrade() -> None:
    op.drop_table("customer_headrooms")
    with op.batch_alter_table("usage_monthly") as batch:
        batch.drop_column("folded_seq")
