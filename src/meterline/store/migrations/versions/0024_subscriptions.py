"""contracts.subscriptions (subscriptions and their quantity changes) and rates.billing_frequency

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contracts") as batch:
        batch.add_column(sa.Column("subscriptions", sa.Text(), nullable=False, server_default="[]"))
    with op.batch_alter_table("rates") as batch:
        batch.add_column(sa.Column("billing_frequency", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rates") as batch:
        batch.drop_column("billing_frequency")
    with op.batch_alter_table("contracts") as batch:
        batch.drop_column("subscriptions")
