"""alert resolutions: the API asks the engine to resolve alert states instead of writing them

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 02:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_resolutions",
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("cause", sa.String(length=32), nullable=False),
        sa.Column("requested_at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", "partition", "customer_id"),
    )


def downgrade() -> None:
    op.drop_table("alert_resolutions")
