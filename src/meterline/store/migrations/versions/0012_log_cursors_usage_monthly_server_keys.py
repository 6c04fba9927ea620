"""log_cursors (was evaluator_cursors: it holds the webhook fan-out's cursor, not the evaluator's),
usage_monthly (was usage_period: its periods are calendar months, not billing periods), server_keys

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.rename_table("evaluator_cursors", "log_cursors")
    op.rename_table("usage_period", "usage_monthly")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER INDEX evaluator_cursors_pkey RENAME TO log_cursors_pkey")
        op.execute("ALTER INDEX usage_period_pkey RENAME TO usage_monthly_pkey")
    op.create_table(
        "server_keys",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("server_keys")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER INDEX log_cursors_pkey RENAME TO evaluator_cursors_pkey")
        op.execute("ALTER INDEX usage_monthly_pkey RENAME TO usage_period_pkey")
    op.rename_table("usage_monthly", "usage_period")
    op.rename_table("log_cursors", "evaluator_cursors")
