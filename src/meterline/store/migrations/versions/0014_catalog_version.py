"""catalog_version: moved by triggers on every change to the catalog the engine prices with.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 04:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# Every table pricing reads that is not a customer's own (contracts and commits ask the engine
# to bill their customer again through billing_requests).
CATALOG_TABLES = (
    "credit_types",
    "billable_metrics",
    "products",
    "product_versions",
    "rate_cards",
    "rate_card_conversions",
    "rate_card_aliases",
    "rates",
)
_BUMP = "UPDATE catalog_version SET version = version + 1 WHERE id = 1"


def upgrade() -> None:
    op.create_table(
        "catalog_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO catalog_version (id, version) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION meterline_catalog_changed() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {_BUMP}; RETURN NULL; END $$"
        )
        for table in CATALOG_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_catalog_changed AFTER INSERT OR UPDATE OR DELETE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION meterline_catalog_changed()"
            )
        return
    for table in CATALOG_TABLES:
        for operation in ("INSERT", "UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_catalog_{operation.lower()} AFTER {operation} ON {table} "
                f"BEGIN {_BUMP}; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in CATALOG_TABLES:
            op.execute(f"DROP TRIGGER {table}_catalog_changed ON {table}")
        op.execute("DROP FUNCTION meterline_catalog_changed()")
    else:
        for table in CATALOG_TABLES:
            for operation in ("INSERT", "UPDATE", "DELETE"):
                op.execute(f"DROP TRIGGER {table}_catalog_{operation.lower()}")
    op.drop_table("catalog_version")
