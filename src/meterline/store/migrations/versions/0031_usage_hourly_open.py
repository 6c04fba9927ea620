"""usage_hourly_open: the hour rows of the hours still open, kept apart until their hour passes

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-08 01:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import meterline.store.types
from meterline.domain.timeutil import month_bounds

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

_KEY = "customer_id, metric_id, hour_us, group_values"
_COLUMNS = f"{_KEY}, event_count, total, maximum, latest, latest_ts_us, latest_seq"


def upgrade() -> None:
    op.create_table(
        "usage_hourly_open",
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("metric_id", sa.String(length=36), nullable=False),
        sa.Column("hour_us", sa.BigInteger(), nullable=False),
        sa.Column("group_values", sa.String(length=1024), nullable=False),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("total", meterline.store.types.ExactDecimal(), nullable=False),
        sa.Column("maximum", meterline.store.types.ExactDecimal(), nullable=True),
        sa.Column("latest", meterline.store.types.ExactDecimal(), nullable=True),
        sa.Column("latest_ts_us", sa.BigInteger(), nullable=False),
        sa.Column("latest_seq", sa.BigInteger(), nullable=False),
        sa.Column("folded_seq", sa.BigInteger(), server_default=sa.text("-1"), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "metric_id", "hour_us", "group_values"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_usage_hourly_open_hour", "usage_hourly_open", ["hour_us"])


def downgrade() -> None:
    # The open rows are usage counted nowhere else, in the hour rows or the month rows: added to
    # their keys' rows in usage_hourly (as `Aggregate.merge` adds them) before the table goes, and
    # to their months' rows.
    sqlite = op.get_bind().dialect.name == "sqlite"
    total = "meterline_decimal_sum(h.total, excluded.total)" if sqlite else "h.total + excluded.total"
    maximum = (
        "meterline_decimal_max(h.maximum, excluded.maximum)"
        if sqlite
        else "GREATEST(h.maximum, excluded.maximum)"
    )
    later = (
        "(excluded.latest_ts_us > h.latest_ts_us OR (excluded.latest_ts_us = h.latest_ts_us"
        " AND excluded.latest_seq > h.latest_seq))"
    )
    op.execute(
        f"INSERT INTO usage_hourly AS h ({_COLUMNS}) SELECT {_COLUMNS} FROM usage_hourly_open WHERE true "
        f"ON CONFLICT ({_KEY}) DO UPDATE SET event_count = h.event_count + excluded.event_count, "
        f"total = {total}, maximum = {maximum}, "
        f"latest = CASE WHEN {later} THEN excluded.latest ELSE h.latest END, "
        f"latest_ts_us = CASE WHEN {later} THEN excluded.latest_ts_us ELSE h.latest_ts_us END, "
        f"latest_seq = CASE WHEN {later} THEN excluded.latest_seq ELSE h.latest_seq END"
    )
    month_updates = (
        f"event_count = m.event_count + excluded.event_count, total = {total.replace('h.', 'm.')}, "
        f"maximum = {maximum.replace('h.', 'm.')}, "
        f"latest = CASE WHEN {later.replace('h.', 'm.')} THEN excluded.latest ELSE m.latest END, "
        f"latest_ts_us = CASE WHEN {later.replace('h.', 'm.')} THEN excluded.latest_ts_us ELSE m.latest_ts_us END, "
        f"latest_seq = CASE WHEN {later.replace('h.', 'm.')} THEN excluded.latest_seq ELSE m.latest_seq END, "
        "folded_seq = CASE WHEN excluded.folded_seq > m.folded_seq THEN excluded.folded_seq ELSE m.folded_seq END"
    )
    bind = op.get_bind()
    for (hour_us,) in bind.execute(sa.text("SELECT DISTINCT hour_us FROM usage_hourly_open")).all():
        start, end = month_bounds(hour_us)
        bind.execute(
            sa.text(
                "INSERT INTO usage_monthly AS m (customer_id, metric_id, period_start_us, group_values, "
                "period_end_us, event_count, total, maximum, latest, latest_ts_us, latest_seq, folded_seq) "
                "SELECT customer_id, metric_id, :start, group_values, :end, event_count, total, maximum, "
                "latest, latest_ts_us, latest_seq, folded_seq FROM usage_hourly_open WHERE hour_us = :hour "
                f"ON CONFLICT (customer_id, metric_id, period_start_us, group_values) DO UPDATE SET {month_updates}"
            ),
            {"start": start, "end": end, "hour": hour_us},
        )
    op.drop_index("ix_usage_hourly_open_hour", table_name="usage_hourly_open")
    op.drop_table("usage_hourly_open")
