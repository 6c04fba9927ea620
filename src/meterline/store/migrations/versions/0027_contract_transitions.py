"""contract transitions (RENEWAL, SUPERSEDE: the contract a new one takes over from) and commit
rollover (the fraction of a commit's unused balance that rolls over at a transition, and what a
rollover commit was rolled over from)

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import meterline.store.types

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contracts") as batch:
        batch.add_column(sa.Column("transition_from_contract_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("transition_type", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("transition_trueup", sa.String(length=8), nullable=True))
        # A contract is taken over by one contract at most.
        batch.create_index("ux_contracts_transition_from", ["transition_from_contract_id"], unique=True)
    with op.batch_alter_table("commits") as batch:
        batch.add_column(sa.Column("rollover_fraction", meterline.store.types.ExactDecimal(), nullable=True))
        batch.add_column(sa.Column("rolled_over_from", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("commits") as batch:
        batch.drop_column("rolled_over_from")
        batch.drop_column("rollover_fraction")
    with op.batch_alter_table("contracts") as batch:
        batch.drop_index("ux_contracts_transition_from")
        batch.drop_column("transition_trueup")
        batch.drop_column("transition_type")
        batch.drop_column("transition_from_contract_id")
