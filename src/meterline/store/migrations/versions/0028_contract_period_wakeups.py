"""contract period wake-ups: every customer with a contract is woken at its periods' starts and
ends, whatever else it has, so that each period's draft is marked open and finalized

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07 19:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

_CONTRACTED = "SELECT customer_id FROM contracts WHERE archived_at_us IS NULL"


def upgrade() -> None:
    # Every customer with a contract is woken once, which schedules its next instant, now
    # including its contracts' next period bound (a wake-up due later would miss it).
    op.execute(f"UPDATE alert_wakeups SET due_us = 0 WHERE customer_id IN ({_CONTRACTED})")
    op.execute(
        "INSERT INTO alert_wakeups (customer_id, due_us) "
        "SELECT DISTINCT customer_id, 0 FROM contracts WHERE archived_at_us IS NULL "
        "AND customer_id NOT IN (SELECT customer_id FROM alert_wakeups)"
    )


def downgrade() -> None:
    pass  # the wake-ups stay valid: each one only makes the engine look at its customer again
