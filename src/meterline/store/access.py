"""What access decisions read: everything about up to `MAX_REFS` customers in one statement.

One statement reads, for the references asked about (customer ids or ingest aliases, archived
customers included): the customers they name, their blocking alerts in alarm, the changes asked
of the engine and not yet applied (blocking alerts not measured yet, archives and resets,
recomputes, time-driven instants that have come), and the lowest position the engine's
partitions have applied the event log to. One statement is one snapshot on both SQLite and
PostgreSQL, so the states read hold at least every event up to that position; and it is the
whole cost of a check: no query per customer, and no statement built per call (the text is made
once per dialect and run on the driver's connection, outside any transaction: `single_reads`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

import msgspec

from meterline.domain.access import Alarm
from meterline.store.db import Database

HARD = "hard"
IN_ALARM = "in_alarm"
MAX_REFS = 1000  # references per statement (a stream's most)

# The rows of one read, told apart by their first column; NULLs are typed for PostgreSQL's UNION.
# One pass over the customers named reads, for each, its blocking alerts in force (by their own
# partial index, ix_alerts_blocking_in_force: its hard limit, seldom more), their states, and
# whether a recompute or a time-driven instant is pending: a handful of key look-ups a customer,
# none of its other alerts and none of its history of replaced limits. Alerts of every customer
# and resolutions still pending (archives, resets) come from small sets of their own (CROSS JOIN
# keeps SQLite's join order; PostgreSQL plans it as any inner join).
#   customer:    ref, customer, archived at, via, alert, threshold, limit, created at, status,
#                measure, recompute asked at, instant due at
#   alarm:       customer, alert, threshold, limit, measure, resolution asked at (an alert of every
#                customer, or one archived whose resolution is pending)
#   unmeasured:  customer, created at (an alert of every customer not measured for it yet)
#   reset:       customer, asked at
#   position:    the lowest partition position
_READ = """
WITH refs(ref) AS ({refs}),
named AS (
    SELECT r.ref AS ref, c.id AS id, c.archived_at_us AS archived_at_us, 'id' AS via
    FROM refs r JOIN customers c ON c.id = r.ref
    UNION ALL
    SELECT r.ref, c.id, c.archived_at_us, 'alias'
    FROM refs r JOIN customer_aliases x ON x.alias = r.ref JOIN customers c ON c.id = x.customer_id
)
SELECT 'customer', n.ref, n.id, n.archived_at_us, n.via, a.id, a.threshold, a.spend_limit, a.created_at_us,
    s.status, s.measure,
    (SELECT b.requested_at_us FROM billing_requests b WHERE b.customer_id = n.id),
    (SELECT w.due_us FROM alert_wakeups w WHERE w.customer_id = n.id AND w.due_us <= {now})
FROM named n
LEFT JOIN alerts a ON a.customer_id = n.id AND a.blocking AND a.archived_at_us IS NULL
LEFT JOIN alert_states s ON s.alert_id = a.id AND s.customer_id = n.id
UNION ALL
SELECT 'alarm', {null_text}, s.customer_id, {null_int}, {null_text}, a.id, a.threshold, a.spend_limit, {null_int},
    {null_text}, s.measure, {null_int}, {null_int}
FROM alerts a CROSS JOIN alert_states s
WHERE a.customer_id IS NULL AND a.blocking AND a.archived_at_us IS NULL
    AND s.alert_id = a.id AND s.customer_id IN (SELECT id FROM named) AND s.status = 'in_alarm'
UNION ALL
SELECT 'unmeasured', {null_text}, n.id, {null_int}, {null_text}, a.id, {null_number}, {null_text}, a.created_at_us,
    {null_text}, {null_number}, {null_int}, {null_int}
FROM alerts a CROSS JOIN named n
WHERE a.customer_id IS NULL AND a.blocking AND a.archived_at_us IS NULL
    AND NOT EXISTS (SELECT 1 FROM alert_states s WHERE s.alert_id = a.id AND s.customer_id = n.id)
UNION ALL
SELECT 'alarm', {null_text}, s.customer_id, {null_int}, {null_text}, a.id, a.threshold, a.spend_limit, {null_int},
    {null_text}, s.measure, r.requested_at_us, {null_int}
FROM alert_resolutions r CROSS JOIN alerts a CROSS JOIN alert_states s
WHERE a.id = r.alert_id AND a.blocking AND s.alert_id = r.alert_id
    AND (r.customer_id = '' OR s.customer_id = r.customer_id)
    AND s.customer_id IN (SELECT id FROM named) AND s.status = 'in_alarm'
UNION ALL
SELECT 'reset', {null_text}, r.customer_id, {null_int}, {null_text}, {null_text}, {null_number}, {null_text},
    {null_int}, {null_text}, {null_number}, r.requested_at_us, {null_int}
FROM alert_resolutions r CROSS JOIN alerts a
WHERE a.id = r.alert_id AND a.blocking AND r.customer_id IN (SELECT id FROM named)
UNION ALL
SELECT 'position', {null_text}, {null_text}, {null_int}, {null_text}, {null_text}, {null_number}, {null_text},
    {null_int}, {null_text}, {null_number}, (SELECT min(p.position) FROM engine_partitions p), {oldest_waiting}
"""
# Where the event log shares the database (PostgreSQL), the same statement reads when the oldest
# event not evaluated yet arrived: one snapshot for both.
_OLDEST_WAITING_IN_STATEMENT = """(SELECT e.received_at_us FROM events e
    WHERE e.seq > COALESCE((SELECT min(p.position) FROM engine_partitions p), 0) ORDER BY e.seq LIMIT 1)"""
# Else its own statement on the event log (SQLite: a file of its own), read after the state's.
_OLDEST_WAITING = "SELECT received_at_us FROM events WHERE seq > ? ORDER BY seq LIMIT 1"


@dataclass(frozen=True, slots=True)
class NamedCustomer:
    customer_id: str
    archived: bool


@dataclass(slots=True)
class AccessFacts:
    named: dict[str, NamedCustomer] = field(default_factory=dict)  # by reference; absent: unknown
    # customer -> alert id -> its blocking alert in alarm: in force, or archived (or reset) with its
    # resolution not applied yet, which holds until it is (so replacing a limit never leaves a
    # moment without one; an archived alert's alarm left by a batch that raced the archive, with
    # no resolution coming, never holds: no row reads it).
    alarms: dict[str, dict[str, Alarm]] = field(default_factory=dict)
    # The earliest change to the customer the engine has not applied yet: an archive or reset, a
    # recompute asked for, a time-driven instant that has come; and, apart (archived customers are
    # never measured), the creation of a blocking alert not yet measured for it.
    pending: dict[str, int] = field(default_factory=dict)
    unmeasured: dict[str, int] = field(default_factory=dict)
    position: int = 0  # every event of the log up to here is applied, in every partition
    oldest_waiting_us: int | None = None  # when the first event of the log after it arrived


def read_facts(db: Database, refs: Sequence[str], now_us: int) -> AccessFacts:
    """Everything decisions about these references need (at most MAX_REFS): one statement on the
    state database, then, where the event log is a database of its own, one on the log (read
    after the states: an event it shows waiting may be missing from them, never the other way
    round); each statement a snapshot of its own, with no transaction around it."""
    refs = list(dict.fromkeys(refs))
    assert len(refs) <= MAX_REFS
    log_apart = db.separate_event_log
    if db.dialect == "postgresql":
        params: Any = {"refs": refs, "now": now_us}
    else:
        params = (_encode(refs).decode(), now_us)
    with db.single_reads() as conn:
        rows = conn.execute(_statement(db.dialect, log_apart), params).fetchall()
    facts = _facts(rows)
    if log_apart:
        with db.single_reads(log=True) as log:  # read to the end: the statement's snapshot ends
            waiting = log.execute(_OLDEST_WAITING, (facts.position,)).fetchall()
        facts.oldest_waiting_us = waiting[0][0] if waiting else None
    return facts


def _facts(rows: list[Any]) -> AccessFacts:
    facts = AccessFacts()
    named, pending, unmeasured = facts.named, facts.pending, facts.unmeasured
    ranks: dict[str, int] = {}
    for row in rows:
        kind, customer_id = row[0], row[2]
        if kind == "customer":
            ref, archived_at_us, via = row[1], row[3], row[4]
            # An active customer named by its id outranks every other (`_rank`): the usual row.
            rank = 0 if archived_at_us is None and via == "id" else _rank(via, archived_at_us)
            if rank < ranks.get(ref, _UNRANKED):
                ranks[ref] = rank
                named[ref] = NamedCustomer(customer_id, archived_at_us is not None)
            for at_us in (row[11], row[12]):  # a recompute asked for, a time-driven instant come
                if at_us is not None:
                    pending[customer_id] = min(pending.get(customer_id, at_us), at_us)
            status = row[9]
            if row[5] is None:
                continue  # the usual customer: no blocking alert but, perhaps, an alert of every customer
            if status is None:  # in force, not measured for the customer yet
                unmeasured[customer_id] = min(unmeasured.get(customer_id, row[8]), row[8])
            elif status == IN_ALARM:
                _alarm(facts, customer_id, row[5], row[10], row[6], row[7])
        elif kind == "alarm":
            _alarm(facts, customer_id, row[5], row[10], row[6], row[7])
            if row[11] is not None:  # an archive or reset of it the engine has not applied yet
                pending[customer_id] = min(pending.get(customer_id, row[11]), row[11])
        elif kind == "unmeasured":
            unmeasured[customer_id] = min(unmeasured.get(customer_id, row[8]), row[8])
        elif kind == "reset":
            pending[customer_id] = min(pending.get(customer_id, row[11]), row[11])
        else:
            facts.position = int(row[11] or 0)
            facts.oldest_waiting_us = row[12]
    return facts


def _alarm(
    facts: AccessFacts, customer_id: str, alert_id: str, measure: Any, threshold: Any, limit: str | None
) -> None:
    mine = facts.alarms.setdefault(customer_id, {})
    if alert_id not in mine:
        mine[alert_id] = _alarm_of(alert_id, threshold, measure, limit == HARD)


def _alarm_of(alert_id: str, threshold: Any, measure: Any, hard: bool) -> Alarm:
    """An alarm, the same object for the same text (SQLite's decimals: what it is made of is its
    key): most checks find the alarms the last ones did, and parse nothing again for them."""
    if not isinstance(threshold, str):  # PostgreSQL's: decimals already
        return Alarm(alert_id, threshold, measure, hard)
    key = (alert_id, threshold, measure, hard)
    found = _ALARMS.get(key)
    if found is None:
        if len(_ALARMS) >= _ALARMS_KEPT:
            _ALARMS.clear()
        found = _ALARMS[key] = Alarm(alert_id, Decimal(threshold), _decimal(measure), hard)
    return found


def _rank(via: str, archived_at_us: int | None) -> int:
    """The customer a reference names, as ingest resolves it: an active customer with this id,
    else the active customer holding this alias; failing both, an archived customer with this id,
    else the archived customer that last held the alias (archiving releases a customer's aliases).
    The lowest rank wins."""
    archived = archived_at_us is not None
    return ((2 if archived else 0) + (1 if via == "alias" else 0)) * (1 << 62) - (archived_at_us or 0)


@cache
def _statement(dialect: str, log_apart: bool) -> str:
    if dialect == "postgresql":
        null_int = "CAST(NULL AS BIGINT)"
        return _READ.format(
            refs="SELECT unnest(CAST(%(refs)s AS TEXT[]))",
            now="%(now)s",
            null_text="CAST(NULL AS TEXT)",
            null_number="CAST(NULL AS NUMERIC)",
            null_int=null_int,
            oldest_waiting=null_int if log_apart else _OLDEST_WAITING_IN_STATEMENT,
        )
    return _READ.format(
        refs="SELECT value FROM json_each(?)",
        now="?",
        null_text="NULL",
        null_number="NULL",
        null_int="NULL",
        oldest_waiting="NULL" if log_apart else _OLDEST_WAITING_IN_STATEMENT,
    )


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else value if isinstance(value, Decimal) else Decimal(value)


_encode = msgspec.json.Encoder().encode
_UNRANKED = 1 << 64
_ALARMS: dict[tuple[str, str, str | None, bool], Alarm] = {}
_ALARMS_KEPT = 100_000
