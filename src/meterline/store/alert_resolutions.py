"""Requests that the engine resolve alert states: the API's way to change them without writing them.

Archiving an alert in alarm, or resetting one for a customer, returns its in-alarm states to ok
and notifies each as resolved. Alert states have one writer, the engine holding the customer's
home partition, so the API records a request per partition and the engine applies it at the
start of its next batch, in the batch's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, delete, select, tuple_

from meterline.domain.timeutil import now_us
from meterline.store.sql import insert_ignoring_duplicates
from meterline.store.tables import alert_resolutions, alert_states, customers

EVERY_CUSTOMER = ""
IN_ALARM = "in_alarm"


@dataclass(frozen=True, slots=True)
class Resolution:
    alert_id: str
    partition: int
    customer_id: str  # EVERY_CUSTOMER: each customer of the partition with a state of the alert
    cause: str


def request_for_alert(conn: Connection, alert_id: str, cause: str, *, home: int | None = None) -> None:
    """Resolve the alert's in-alarm states, whoever's they are (an archived alert).

    `home`: the partition of the customer the alert is for, asked whatever its states are now.
    On PostgreSQL a batch measuring the alert may commit an alarm after this request read none
    (it read the alert before the archive committed): the request must be there for the next
    batch to resolve it, or the alarm would outlive the alert (and a blocked customer stay
    blocked). An alert of every customer is asked of the partitions with alarms now only: asking
    all of them would make each read every state of the alert."""
    partitions = set(
        conn.execute(
            select(customers.c.partition)
            .join(alert_states, alert_states.c.customer_id == customers.c.id)
            .where(alert_states.c.alert_id == alert_id, alert_states.c.status == IN_ALARM)
            .distinct()
        ).scalars()
    )
    if home is not None:
        partitions.add(home)
    _insert(conn, [Resolution(alert_id, int(p), EVERY_CUSTOMER, cause) for p in sorted(partitions)])


def request_for_customer(
    conn: Connection, alert_id: str, customer_id: str, partition: int, cause: str
) -> None:
    """Resolve, then forget, the customer's states of the alert, and measure it again (a reset)."""
    _insert(conn, [Resolution(alert_id, partition, customer_id, cause)])


def take(conn: Connection, partitions: frozenset[int] | None) -> list[Resolution]:
    """The pending requests of these partitions (None: all), removed in the caller's transaction."""
    query = select(
        alert_resolutions.c.alert_id,
        alert_resolutions.c.partition,
        alert_resolutions.c.customer_id,
        alert_resolutions.c.cause,
    ).order_by(alert_resolutions.c.requested_at_us)
    if partitions is not None:
        query = query.where(alert_resolutions.c.partition.in_(sorted(partitions)))
    found = [Resolution(a, int(p), c, cause) for a, p, c, cause in conn.execute(query)]
    keys = [(r.alert_id, r.partition, r.customer_id) for r in found]
    if keys:
        conn.execute(
            delete(alert_resolutions).where(
                tuple_(
                    alert_resolutions.c.alert_id,
                    alert_resolutions.c.partition,
                    alert_resolutions.c.customer_id,
                ).in_(keys)
            )
        )
    return found


def _insert(conn: Connection, wanted: Iterable[Resolution]) -> None:
    at = now_us()
    rows = [
        {
            "alert_id": r.alert_id,
            "partition": r.partition,
            "customer_id": r.customer_id,
            "cause": r.cause,
            "requested_at_us": at,
        }
        for r in wanted
    ]
    insert_ignoring_duplicates(conn, alert_resolutions, rows)
