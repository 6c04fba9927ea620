"""Invoices from schedules: contracts' scheduled charges, and the schedule items an invoice bills

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contracts") as batch:
        batch.add_column(sa.Column("scheduled_charges", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("scheduled_charges_on_usage_invoices", sa.String(length=8), nullable=True))
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("schedule_item_ids", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("schedule_item_ids")
    with op.batch_alter_table("contracts") as batch:
        batch.drop_column("scheduled_charges_on_usage_invoices")
        batch.drop_column("scheduled_charges")
