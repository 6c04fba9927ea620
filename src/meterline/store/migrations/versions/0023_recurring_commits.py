"""recurring commits and credits: contracts.recurring (as given), commits.recurring_id (the
recurring commit a period's commit was created by); threshold billing: contracts.thresholds

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 12:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recurring", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("thresholds", sa.JSON(), nullable=True))
    with op.batch_alter_table("commits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recurring_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("commits", schema=None) as batch_op:
        batch_op.drop_column("recurring_id")
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.drop_column("thresholds")
        batch_op.drop_column("recurring")
