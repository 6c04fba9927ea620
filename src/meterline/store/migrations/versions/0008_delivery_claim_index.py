"""delivery claim index: a dispatcher in another process reads the deliveries of a claim it was handed

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 10:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_webhook_deliveries_claim", "webhook_deliveries", ["claim_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_claim", table_name="webhook_deliveries")
