"""alias lookup index: resolving ingest aliases without scanning every customer's aliases

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 07:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_customer_aliases_alias", "customer_aliases", ["alias", "active", "customer_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_customer_aliases_alias", table_name="customer_aliases")
