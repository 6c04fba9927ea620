"""Drafts are derived, not stored: a draft's row only marks its period open, so the amounts, line
items and deductions stored for drafts before are cleared (nothing reads them any more).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 04:15:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "DELETE FROM commit_deductions WHERE invoice_id IN (SELECT id FROM invoices WHERE status = 'DRAFT')"
    )
    op.execute(
        "UPDATE invoices SET subtotal = 0, total = 0, spend_by_credit_type = '{}', line_items = '[]' "
        "WHERE status = 'DRAFT'"
    )


def downgrade() -> None:
    # Nothing to restore: an older meterline rewrites each draft whole at its customer's next batch.
    pass
