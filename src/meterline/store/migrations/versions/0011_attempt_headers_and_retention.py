"""attempt headers and delivery retention: keep a receiver's answer headers (its body only where
private destinations are allowed); find deliveries by state and age: the oldest undelivered (health) and the retention purge

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 01:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_attempts") as batch:
        batch.add_column(sa.Column("response_headers", sa.Text(), nullable=True))
    op.create_index(
        "ix_webhook_deliveries_state_age", "webhook_deliveries", ["state", "created_at_us"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_state_age", table_name="webhook_deliveries")
    with op.batch_alter_table("webhook_attempts") as batch:
        batch.drop_column("response_headers")
