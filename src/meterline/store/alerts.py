"""Alerts, their per-(customer, scope) state, sweeps, and the notification outbox."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import msgspec
from sqlalchemy import Connection, Select, bindparam, delete, func, literal, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from meterline.domain.alerts import AlertType
from meterline.domain.errors import Conflict, NotFound
from meterline.domain.ids import new_id
from meterline.domain.timeutil import now_us
from meterline.store.sql import IN_CHUNK, among, among_bound, bound_list, chunks, upsert
from meterline.store.tables import alert_states, alert_sweeps, alerts, notifications

# conn.info key of the per-transaction tally of notifications written.
WRITTEN_TALLY = "meterline.notifications_written"

_encode = msgspec.json.Encoder(decimal_format="number").encode


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: str
    name: str
    alert_type: AlertType
    threshold: Decimal
    credit_type_id: str | None
    customer_id: str | None
    billable_metric_id: str | None
    invoice_types_filter: list[str] | None
    group_values: list[dict[str, Any]] | None
    custom_field_filters: list[dict[str, Any]] | None
    credit_grant_type_filters: list[str] | None
    evaluate_on_create: bool
    uniqueness_key: str | None
    created_at_us: int
    updated_at_us: int
    archived_at_us: int | None
    blocking: bool = False  # meterline's extension: the customer is denied access while in alarm
    spend_limit: str | None = None  # "soft" or "hard": a limit /v1/spend-limits/set manages
    forecast_window_hours: int | None = None  # spend_forecast_reached: its pace window (None: 24 h)
    # low_remaining_seat_balance_reached: {"seat_group_key", "seat_group_value"?} (absent: every seat)
    seat_filter: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class AlertState:
    alert_id: str
    customer_id: str
    scope: str
    status: str
    triggered_by: str | None
    measure: Decimal | None
    period_start_us: int | None
    updated_at_us: int


@dataclass(frozen=True, slots=True)
class Notification:
    id: str
    type: str
    alert_id: str | None
    customer_id: str | None
    payload: dict[str, Any]


def create_alert(conn: Connection, values: dict[str, Any]) -> str:
    alert_id = new_id()
    now = now_us()
    row = {**values, "id": alert_id, "created_at_us": now, "updated_at_us": now, "archived_at_us": None}
    try:
        with conn.begin_nested():
            conn.execute(alerts.insert().values(row))
    except IntegrityError:
        raise Conflict("This uniqueness key has already been used.") from None
    return alert_id


def uniqueness_key_taken(conn: Connection, key: str) -> bool:
    return conn.execute(select(alerts.c.id).where(alerts.c.uniqueness_key == key)).first() is not None


def get_alert(conn: Connection, alert_id: str) -> AlertRecord:
    row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).mappings().first()
    if row is None:
        raise NotFound(f"alert_id: no alert with id {alert_id}")
    return _record(row)


def alerts_for_customer(
    conn: Connection, customer_id: str, *, include_archived: bool = False
) -> list[AlertRecord]:
    """The customer's own alerts and the all-customers ones, oldest first."""
    query = select(alerts).where(or_(alerts.c.customer_id == customer_id, alerts.c.customer_id.is_(None)))
    if not include_archived:
        query = query.where(alerts.c.archived_at_us.is_(None))
    return [_record(r) for r in conn.execute(query.order_by(alerts.c.created_at_us, alerts.c.id)).mappings()]


def alerts_for_customers(conn: Connection, customer_ids: Sequence[str]) -> dict[str, list[AlertRecord]]:
    """`alerts_for_customer` of many customers: their own alerts and the all-customers ones."""
    found: dict[str, list[AlertRecord]] = {c: [] for c in customer_ids}
    for chunk in chunks(customer_ids, IN_CHUNK):
        query = select(alerts).where(
            or_(among(conn, alerts.c.customer_id, chunk), alerts.c.customer_id.is_(None)),
            alerts.c.archived_at_us.is_(None),
        )
        for row in conn.execute(query.order_by(alerts.c.created_at_us, alerts.c.id)).mappings():
            record = _record(row)
            if record.customer_id is None:
                for customer_id in chunk:
                    found[customer_id].append(record)
            else:
                found[record.customer_id].append(record)
    return found


def states_for_customers(
    conn: Connection, customer_ids: Sequence[str]
) -> dict[str, dict[tuple[str, str], AlertState]]:
    """Every alert state of many customers: customer -> (alert id, scope) -> state."""
    found: dict[str, dict[tuple[str, str], AlertState]] = {c: {} for c in customer_ids}
    for chunk in chunks(customer_ids, IN_CHUNK):
        # Positional rows (the table's columns are AlertState's fields, in order): a batch reads
        # every alert state of its customers, and mapping access per column costs more than this.
        for row in conn.execute(select(alert_states).where(among(conn, alert_states.c.customer_id, chunk))):
            state = AlertState(*row)
            found[state.customer_id][(state.alert_id, state.scope)] = state
    return found


def spend_limit_alerts(conn: Connection, customer_ids: Sequence[str]) -> list[AlertRecord]:
    """The spend-limit alerts in force (`spend_limit` set, not archived) of these customers."""
    found: list[AlertRecord] = []
    for chunk in chunks(list(dict.fromkeys(customer_ids)), IN_CHUNK):
        query = select(alerts).where(
            among(conn, alerts.c.customer_id, chunk),
            alerts.c.spend_limit.is_not(None),
            alerts.c.archived_at_us.is_(None),
        )
        found.extend(_record(r) for r in conn.execute(query.order_by(alerts.c.created_at_us)).mappings())
    return found


def spend_limit_thresholds(
    conn: Connection, customer_ids: Sequence[str], spend_limit: str
) -> list[tuple[str, str, Decimal]]:
    """(customer id, credit type id, threshold) of these customers' spend limits in force of one
    kind, oldest first: what a reservation batch decides on, in a statement built once."""
    found: list[tuple[str, str, Decimal]] = []
    query = _thresholds(conn.dialect.name)
    for chunk in chunks(sorted(set(customer_ids)), IN_CHUNK):
        rows = conn.execute(query, {"ids": bound_list(conn, chunk), "spend_limit": spend_limit})
        found.extend((row[0], row[1], row[2]) for row in rows)
    return found  # oldest first for each customer (a customer's limits are in one chunk)


@lru_cache(maxsize=2)
def _thresholds(dialect: str) -> Select[Any]:
    return (
        select(alerts.c.customer_id, alerts.c.credit_type_id, alerts.c.threshold)
        .where(
            among_bound(dialect, alerts.c.customer_id, "ids"),
            alerts.c.spend_limit == bindparam("spend_limit"),
            alerts.c.credit_type_id.is_not(None),
            alerts.c.archived_at_us.is_(None),
        )
        .order_by(alerts.c.created_at_us)
    )


def spend_limited_after(
    conn: Connection, after: tuple[str, str] | None, limit: int, credit_type_id: str | None
) -> list[tuple[str, str]]:
    """Up to `limit` (customer id, credit type id) with a spend limit in force, in that order,
    after `after` (keyset: the partial index of limits in force, never every alert)."""
    key = tuple_(alerts.c.customer_id, alerts.c.credit_type_id)
    query = (
        select(alerts.c.customer_id, alerts.c.credit_type_id)
        .where(alerts.c.spend_limit.is_not(None), alerts.c.archived_at_us.is_(None))
        .group_by(alerts.c.customer_id, alerts.c.credit_type_id)
        .order_by(alerts.c.customer_id, alerts.c.credit_type_id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(key > tuple_(literal(after[0]), literal(after[1])))
    if credit_type_id is not None:
        query = query.where(alerts.c.credit_type_id == credit_type_id)
    return [(r[0], r[1]) for r in conn.execute(query)]


def archive_alert(conn: Connection, alert_id: str, release_uniqueness_key: bool) -> AlertRecord:
    record = get_alert(conn, alert_id)
    values: dict[str, Any] = {"updated_at_us": now_us()}
    if record.archived_at_us is None:
        values["archived_at_us"] = values["updated_at_us"]
    if release_uniqueness_key:
        values["uniqueness_key"] = None
    conn.execute(update(alerts).where(alerts.c.id == alert_id).values(**values))
    conn.execute(delete(alert_sweeps).where(alert_sweeps.c.alert_id == alert_id))
    return record


def states_of(
    conn: Connection, customer_id: str, alert_ids: Sequence[str]
) -> dict[tuple[str, str], AlertState]:
    """(alert id, scope) -> state, for this customer."""
    if not alert_ids:
        return {}
    rows = conn.execute(
        select(alert_states).where(
            alert_states.c.customer_id == customer_id, alert_states.c.alert_id.in_(list(alert_ids))
        )
    ).mappings()
    return {(r["alert_id"], r["scope"]): _state(r) for r in rows}


def states_of_alert(conn: Connection, alert_id: str) -> list[AlertState]:
    rows = conn.execute(select(alert_states).where(alert_states.c.alert_id == alert_id)).mappings()
    return [_state(r) for r in rows]


def save_state(conn: Connection, state: AlertState) -> None:
    save_states(conn, [state])


def save_states(conn: Connection, states: Sequence[AlertState]) -> None:
    """Upsert alert states, one statement for all of them (the last of a key wins: one
    statement may not touch a row twice on PostgreSQL)."""
    latest = {(state.alert_id, state.customer_id, state.scope): state for state in states}
    upsert(
        conn,
        alert_states,
        [
            {
                "alert_id": state.alert_id,
                "customer_id": state.customer_id,
                "scope": state.scope,
                "status": state.status,
                "triggered_by": state.triggered_by,
                "measure": state.measure,
                "period_start_us": state.period_start_us,
                "updated_at_us": state.updated_at_us,
            }
            for state in latest.values()
        ],
        ["alert_id", "customer_id", "scope"],
    )


def add_notification(conn: Connection, notification: Notification, at_us: int) -> None:
    add_notifications(conn, [(notification, at_us)])


def add_notifications(conn: Connection, written: Sequence[tuple[Notification, int]]) -> None:
    """Append to the outbox in the order given (their seqs follow it), one statement for all.

    Each type's count is tallied on the connection (`take_written_tally`), so the evaluator can
    count transitions in /metrics once its transaction has committed."""
    if not written:
        return
    tally: Counter[str] = conn.info.setdefault(WRITTEN_TALLY, Counter())
    tally.update(n.type for n, _at in written)
    rows = [
        (
            n.id,
            n.type,
            n.alert_id,
            n.customer_id,
            _encode({"id": n.id, "type": n.type, "properties": n.payload}).decode(),
            at_us,
        )
        for n, at_us in written
    ]
    if conn.dialect.name == "sqlite":
        # Straight to the driver: a burst's batch writes thousands before its commit, and
        # SQLAlchemy's binding of each row's dict cost about as much as SQLite's insert of it.
        conn.exec_driver_sql(_INSERT_NOTIFICATION_SQLITE, rows)
        return
    conn.execute(notifications.insert(), [dict(zip(_NOTIFICATION_COLUMNS, row, strict=True)) for row in rows])


_NOTIFICATION_COLUMNS = ("id", "type", "alert_id", "customer_id", "payload", "created_at_us")
_INSERT_NOTIFICATION_SQLITE = (
    f"INSERT INTO notifications ({', '.join(_NOTIFICATION_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)"
)


def take_written_tally(conn: Connection) -> Counter[str]:
    """The notifications written on this connection since the last take, by type (then forgotten)."""
    tally: Counter[str] = conn.info.pop(WRITTEN_TALLY, None) or Counter()
    return tally


def notifications_after(conn: Connection, seq: int, limit: int = 1000) -> list[tuple[int, str]]:
    """(seq, payload JSON text) of outbox rows after `seq`, in order."""
    rows = conn.execute(
        select(notifications.c.seq, notifications.c.payload)
        .where(notifications.c.seq > seq)
        .order_by(notifications.c.seq)
        .limit(limit)
    )
    return [(r[0], r[1]) for r in rows]


def outbox_end(conn: Connection) -> int:
    """The outbox's last seq (0 when empty)."""
    return int(conn.execute(select(func.max(notifications.c.seq))).scalar() or 0)


def outbox_customers_after(conn: Connection, seq: int, limit: int) -> list[tuple[int, str | None]]:
    """(seq, customer id) of outbox rows after `seq`, in order: whom each notification is about."""
    rows = conn.execute(
        select(notifications.c.seq, notifications.c.customer_id)
        .where(notifications.c.seq > seq)
        .order_by(notifications.c.seq)
        .limit(limit)
    )
    return [(int(r[0]), r[1]) for r in rows]


# How long a hole in the outbox's seqs may stay before a reader's position jumps it (PostgreSQL
# only: a rolled-back insert leaves a hole for good, a slow transaction fills it within this).
GAP_SETTLE_S = 30.0


class GapWatch:
    """A reader's view of the hole its position waits at: which seq it stopped before, since when."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._gap: tuple[int, float] | None = None

    def note(self, gap_before: int | None) -> None:
        """What the last read stopped before (None: it read through)."""
        if gap_before is None:
            self._gap = None
        elif self._gap is None or self._gap[0] != gap_before:
            self._gap = (gap_before, self._clock())

    def settled(self) -> int | None:
        """The seq the position may now jump to (`contiguous_frontier`'s `skip_gap_through`)."""
        if self._gap is not None and self._clock() - self._gap[1] >= GAP_SETTLE_S:
            return self._gap[0]
        return None


def contiguous_frontier(
    position: int, seqs: Sequence[int], skip_gap_through: int | None
) -> tuple[int, int | None]:
    """How far a reader of the outbox at `position` that has now read `seqs` (ascending, all after
    it) may move its position, and the seq it stopped before (None: it read through).

    The position only moves over consecutive seqs: on PostgreSQL a transaction may commit a lower
    seq after a higher one is visible. A reader lets it jump a gap (`skip_gap_through`) once the
    gap has persisted long enough to be a rolled-back insert rather than a slow one.
    """
    for seq in seqs:
        if seq != position + 1 and (skip_gap_through is None or seq > skip_gap_through):
            return position, seq
        position = seq
    return position, None


def start_sweep(conn: Connection, alert_id: str, triggered_by: str, partitions: Iterable[int]) -> None:
    """Measure the alert for the customers of these partitions (every one for an all-customers
    alert, the customer's home partition for one customer's), each partition by its engine."""
    rows = [
        {"alert_id": alert_id, "partition": p, "after_customer_id": None, "triggered_by": triggered_by}
        for p in partitions
    ]
    upsert(conn, alert_sweeps, rows, ["alert_id", "partition"])


def pending_sweeps(
    conn: Connection, partitions: frozenset[int] | None = None
) -> list[tuple[str, int, str | None, str]]:
    """(alert id, partition, resumed after customer id, cause) of the sweeps not finished, in
    these partitions (None: all)."""
    query = select(
        alert_sweeps.c.alert_id,
        alert_sweeps.c.partition,
        alert_sweeps.c.after_customer_id,
        alert_sweeps.c.triggered_by,
    ).order_by(alert_sweeps.c.alert_id, alert_sweeps.c.partition)
    if partitions is not None:
        query = query.where(alert_sweeps.c.partition.in_(sorted(partitions)))
    return [(r[0], int(r[1]), r[2], r[3]) for r in conn.execute(query)]


def alerts_with_pending_sweeps(conn: Connection, triggered_by: str) -> set[str]:
    query = select(alert_sweeps.c.alert_id).where(alert_sweeps.c.triggered_by == triggered_by).distinct()
    return set(conn.execute(query).scalars())


def advance_sweep(conn: Connection, alert_id: str, partition: int, after_customer_id: str | None) -> None:
    """Record progress, or finish the partition's sweep when `after_customer_id` is None."""
    this = (alert_sweeps.c.alert_id == alert_id) & (alert_sweeps.c.partition == partition)
    if after_customer_id is None:
        conn.execute(delete(alert_sweeps).where(this))
    else:
        conn.execute(update(alert_sweeps).where(this).values(after_customer_id=after_customer_id))


def _record(row: Any) -> AlertRecord:
    return AlertRecord(
        id=row["id"],
        name=row["name"],
        alert_type=AlertType(row["alert_type"]),
        threshold=row["threshold"],
        credit_type_id=row["credit_type_id"],
        customer_id=row["customer_id"],
        billable_metric_id=row["billable_metric_id"],
        invoice_types_filter=row["invoice_types_filter"],
        group_values=row["group_values"],
        seat_filter=row["seat_filter"],
        custom_field_filters=row["custom_field_filters"],
        credit_grant_type_filters=row["credit_grant_type_filters"],
        evaluate_on_create=row["evaluate_on_create"],
        uniqueness_key=row["uniqueness_key"],
        created_at_us=row["created_at_us"],
        updated_at_us=row["updated_at_us"],
        archived_at_us=row["archived_at_us"],
        blocking=bool(row["blocking"]),
        spend_limit=row["spend_limit"],
        forecast_window_hours=row["forecast_window_hours"],
    )


def _state(row: Any) -> AlertState:
    return AlertState(
        alert_id=row["alert_id"],
        customer_id=row["customer_id"],
        scope=row["scope"],
        status=row["status"],
        triggered_by=row["triggered_by"],
        measure=row["measure"],
        period_start_us=row["period_start_us"],
        updated_at_us=row["updated_at_us"],
    )


def forget_states(conn: Connection, alert_id: str, customer_id: str) -> None:
    """Back to `evaluating`: the next evaluation measures afresh (a reset)."""
    conn.execute(
        delete(alert_states).where(
            alert_states.c.alert_id == alert_id, alert_states.c.customer_id == customer_id
        )
    )
