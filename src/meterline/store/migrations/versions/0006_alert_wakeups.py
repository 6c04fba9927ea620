"""alert wakeups: time-driven alert evaluation per customer, instead of periodic sweeps of all

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 06:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_wakeups",
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("due_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id"),
    )
    op.create_index("ix_alert_wakeups_due_us", "alert_wakeups", ["due_us"], unique=False)
    # Every customer measured so far is re-measured once, which schedules its next instant; the
    # periodic sweep over every alert ("*") that this replaces is dropped.
    op.execute(
        "INSERT INTO alert_wakeups (customer_id, due_us) SELECT DISTINCT customer_id, 0 FROM alert_states"
    )
    op.execute("DELETE FROM alert_sweeps WHERE alert_id = '*'")


def downgrade() -> None:
    op.drop_index("ix_alert_wakeups_due_us", table_name="alert_wakeups")
    op.drop_table("alert_wakeups")
