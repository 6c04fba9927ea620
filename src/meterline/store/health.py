"""The few readings `/health` and `/metrics` take on every poll, each by an index or a small
table: the engine's position (the earliest of its partitions' positions: every event before it
is evaluated) and the delivery backlog (one statement on the state database), the event log's
end and the oldest event not yet evaluated (one statement on the event log)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, func, literal, select

from meterline.store.tables import engine_partitions, events, webhook_deliveries

# The backlog is counted up to this many, so a huge backlog costs no more to report than this.
BACKLOG_COUNT_CAP = 100_000


@dataclass(frozen=True, slots=True)
class StateReadings:
    cursor: int  # the earliest partition position: every event up to it is evaluated
    backlog: int  # pending deliveries, counted up to BACKLOG_COUNT_CAP
    oldest_pending_us: int | None
    read_only: bool


@dataclass(frozen=True, slots=True)
class LogReadings:
    last_seq: int
    oldest_unevaluated_us: int | None  # when the first event after the cursor was received


def state_readings(conn: Connection) -> StateReadings:
    d = webhook_deliveries.c
    pending = select(literal(1)).where(d.state == "pending").limit(BACKLOG_COUNT_CAP).subquery()
    read_only = (
        func.current_setting("transaction_read_only") if conn.dialect.name == "postgresql" else literal("off")
    )
    row = conn.execute(
        select(
            select(func.min(engine_partitions.c.position)).scalar_subquery(),
            select(func.count()).select_from(pending).scalar_subquery(),
            select(func.min(d.created_at_us)).where(d.state == "pending").scalar_subquery(),
            read_only,
        )
    ).one()
    return StateReadings(int(row[0] or 0), int(row[1] or 0), row[2], row[3] == "on")


# Built once: every access check reads it too (`services.access`), where building it cost more
# than running it.
_LOG_READINGS = select(
    select(events.c.seq).order_by(events.c.seq.desc()).limit(1).scalar_subquery(),
    select(events.c.received_at_us)
    .where(events.c.seq > bindparam("cursor"))
    .order_by(events.c.seq)
    .limit(1)
    .scalar_subquery(),
)


def log_readings(conn: Connection, cursor: int) -> LogReadings:
    row = conn.execute(_LOG_READINGS, {"cursor": cursor}).one()
    return LogReadings(int(row[0] or 0), row[1])
