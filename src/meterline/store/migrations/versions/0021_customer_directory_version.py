"""customer_directory_version: moved by triggers whenever what an ingest reference resolves to may change

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 13:05:00.000000

The engine keeps the customer each reference (a customer id or an ingest alias) resolved to
across batches while this stays. Adding a customer or an alias never changes what a reference
already resolved to (an alias is held by one active customer at a time), so only updates and
deletes move it: an alias deactivated, a customer archived.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

TABLES = ("customers", "customer_aliases")
_BUMP = "UPDATE customer_directory_version SET version = version + 1 WHERE id = 1"


def upgrade() -> None:
    op.create_table(
        "customer_directory_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO customer_directory_version (id, version) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION meterline_customer_directory_changed() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {_BUMP}; RETURN NULL; END $$"
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_directory_changed AFTER UPDATE OR DELETE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION meterline_customer_directory_changed()"
            )
        return
    for table in TABLES:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_directory_{operation.lower()} AFTER {operation} ON {table} "
                f"BEGIN {_BUMP}; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER {table}_directory_changed ON {table}")
        op.execute("DROP FUNCTION meterline_customer_directory_changed()")
    else:
        for table in TABLES:
            for operation in ("UPDATE", "DELETE"):
                op.execute(f"DROP TRIGGER {table}_directory_{operation.lower()}")
    op.drop_table("customer_directory_version")
