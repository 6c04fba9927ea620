"""invoices.regenerated_from_invoice_id: the voided invoice an invoice was regenerated from

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 07:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("regenerated_from_invoice_id", sa.String(length=36), nullable=True))
        batch.create_unique_constraint("uq_invoices_regenerated_from", ["regenerated_from_invoice_id"])


def downgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.drop_constraint("uq_invoices_regenerated_from", type_="unique")
        batch.drop_column("regenerated_from_invoice_id")
