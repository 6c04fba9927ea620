"""contract_edits: each edit of a contract (v2 contracts/getEditHistory), written with the edit

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07 21:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contract_edits",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("contract_id", sa.String(length=36), nullable=False),
        sa.Column("edited_at_us", sa.BigInteger(), nullable=False),
        sa.Column("edit", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["contract_id"], ["contracts.id"]),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    with op.batch_alter_table("contract_edits", schema=None) as batch_op:
        batch_op.create_index("ix_contract_edits_contract_id", ["contract_id"], unique=False)


def downgrade() -> None:
    op.drop_table("contract_edits")
