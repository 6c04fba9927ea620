"""spend control: alerts that block access (meterline's extension) and the spend limits among them

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_ACTIVE_LIMITS = "spend_limit IS NOT NULL AND archived_at_us IS NULL"
_BLOCKING_IN_FORCE = "blocking AND archived_at_us IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("blocking", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("spend_limit", sa.String(8), nullable=True))
    op.create_index(
        "ix_alerts_blocking_in_force",
        "alerts",
        ["customer_id"],
        unique=False,
        sqlite_where=sa.text(_BLOCKING_IN_FORCE),
        postgresql_where=sa.text(_BLOCKING_IN_FORCE),
    )
    op.create_index(
        "ix_alerts_active_spend_limits",
        "alerts",
        ["customer_id", "credit_type_id"],
        unique=False,
        sqlite_where=sa.text(_ACTIVE_LIMITS),
        postgresql_where=sa.text(_ACTIVE_LIMITS),
    )


def downgrade() -> None:
    op.drop_index("ix_alerts_active_spend_limits", table_name="alerts")
    op.drop_index("ix_alerts_blocking_in_force", table_name="alerts")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("spend_limit")
        batch.drop_column("blocking")
