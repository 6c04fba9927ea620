"""What access decisions read: everything about up to `MAX_REFS` customers in one statement.

One statement reads, for the references asked about (customer ids or ingest aliases, archived
customers included): the customers they name, their blocking alerts in alarm, the changes asked
of the engine and not yet applied (blocking alerts not measured yet, archives and resets,
recomputes, time-driven instants that have come), and the lowest position the engine's
partitions have applied the event log to. One statement is one snapshot on both SQLite and
PostgreSQL, so the states read hold at least every event up to that position; and it is the
whole cost of a check: no query per customer, and no statement built per call (the text is made
once per dialect and run through the driver).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

import msgspec
from sqlalchemy import Connection

from meterline.domain.access import Alarm

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
    {null_int}, {null_text}, {null_number}, (SELECT min(p.position) FROM engine_partitions p), {null_int}
"""


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


def read_facts(conn: Connection, refs: Sequence[str], now_us: int) -> AccessFacts:
    """Everything decisions about these references need (at most MAX_REFS), in one statement."""
    refs = list(dict.fromkeys(refs))
    assert len(refs) <= MAX_REFS
    dialect = conn.dialect.name
    if dialect == "postgresql":
        params: Any = {"refs": refs, "now": now_us}
    else:
        params = (_encode(refs).decode(), now_us)
    facts = AccessFacts()
    ranks: dict[str, int] = {}
    for row in conn.exec_driver_sql(_statement(dialect), params):
        kind, customer_id = row[0], row[2]
        if kind == "customer":
            _customer(facts, ranks, row)
        elif kind == "alarm":
            _alarm(facts, customer_id, row[5], row[10], row[6], row[7])
            if row[11] is not None:  # an archive or reset of it the engine has not applied yet
                _pending(facts, customer_id, row[11])
        elif kind == "unmeasured":
            facts.unmeasured[customer_id] = min(facts.unmeasured.get(customer_id, row[8]), row[8])
        elif kind == "reset":
            _pending(facts, customer_id, row[11])
        else:
            facts.position = int(row[11] or 0)
    return facts


def _customer(facts: AccessFacts, ranks: dict[str, int], row: Any) -> None:
    _, ref, customer_id, archived_at_us, via, alert_id, threshold, limit, created_at_us, status, measure = (
        row[:11]
    )
    _name(facts, ranks, customer_id, ref, via, archived_at_us)
    if row[11] is not None:
        _pending(facts, customer_id, row[11])
    if row[12] is not None:
        _pending(facts, customer_id, row[12])
    if alert_id is None:
        return  # the usual customer: no blocking alert but, perhaps, an alert of every customer
    if status is None:  # in force, not measured for the customer yet
        facts.unmeasured[customer_id] = min(facts.unmeasured.get(customer_id, created_at_us), created_at_us)
    elif status == IN_ALARM:
        _alarm(facts, customer_id, alert_id, measure, threshold, limit)


def _alarm(
    facts: AccessFacts, customer_id: str, alert_id: str, measure: Any, threshold: Any, limit: str | None
) -> None:
    mine = facts.alarms.setdefault(customer_id, {})
    if alert_id not in mine:
        mine[alert_id] = Alarm(alert_id, Decimal(threshold), _decimal(measure), limit == HARD)


def _pending(facts: AccessFacts, customer_id: str, at_us: int | None) -> None:
    if at_us is not None:
        facts.pending[customer_id] = min(facts.pending.get(customer_id, at_us), at_us)


def _name(
    facts: AccessFacts,
    ranks: dict[str, int],
    customer_id: str,
    ref: str,
    via: str,
    archived_at_us: int | None,
) -> None:
    """The customer a reference names, as ingest resolves it: an active customer with this id,
    else the active customer holding this alias; failing both, an archived customer with this id,
    else the archived customer that last held the alias (archiving releases a customer's aliases)."""
    archived = archived_at_us is not None
    rank = ((2 if archived else 0) + (1 if via == "alias" else 0)) * (1 << 62) - (archived_at_us or 0)
    if ref not in ranks or rank < ranks[ref]:
        ranks[ref] = rank
        facts.named[ref] = NamedCustomer(customer_id, archived)


@cache
def _statement(dialect: str) -> str:
    if dialect == "postgresql":
        return _READ.format(
            refs="SELECT unnest(CAST(%(refs)s AS TEXT[]))",
            now="%(now)s",
            null_text="CAST(NULL AS TEXT)",
            null_number="CAST(NULL AS NUMERIC)",
            null_int="CAST(NULL AS BIGINT)",
        )
    return _READ.format(
        refs="SELECT value FROM json_each(?)", now="?", null_text="NULL", null_number="NULL", null_int="NULL"
    )


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else value if isinstance(value, Decimal) else Decimal(value)


_encode = msgspec.json.Encoder().encode
