"""Helpers for SDK tests on a shared server: unique names, timestamps, and waiting for the evaluator.

Every metric these tests create is scoped to event types (or properties) unique to the test, so
metrics of one test never count the events of another.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from metronome import Metronome

from tests.support.waiting import wait_for


def uid() -> str:
    return uuid.uuid4().hex[:12]


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def current_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def hours_ago(hours: int) -> datetime:
    """The start of the hour `hours` before the current one: events there are always in the past."""
    return current_hour() - timedelta(hours=hours)


def event(
    customer_id: str,
    event_type: str,
    timestamp: datetime,
    transaction_id: str | None = None,
    **properties: Any,
) -> dict[str, Any]:
    return {
        "transaction_id": transaction_id or f"tx-{uid()}",
        "customer_id": customer_id,
        "event_type": event_type,
        "timestamp": rfc3339(timestamp),
        "properties": properties,
    }


def new_customer(client: Metronome, *aliases: str) -> str:
    return client.v1.customers.create(name=f"customer {uid()}", ingest_aliases=list(aliases)).data.id


def new_metric(client: Metronome, aggregation_type: Any, event_type: str, **fields: Any) -> str:
    """A metric counting only events of `event_type` (unique to the calling test)."""
    created = client.v1.billable_metrics.create(
        name=f"{aggregation_type.lower()} {event_type}",
        aggregation_type=aggregation_type,
        event_type_filter={"in_values": [event_type]},
        **fields,
    )
    return created.data.id


def settle(client: Metronome) -> None:
    """Return once the evaluator has applied every event ingested before this call.

    The evaluator applies the log in order, so once a marker event ingested now shows as
    processed, so does everything before it. Exact assertions after this cannot be early.
    """
    marker = f"marker-{uid()}"
    client.v1.usage.ingest(
        usage=[event(f"nobody-{uid()}", f"marker-{uid()}", hours_ago(0), transaction_id=marker)]
    )
    wait_for(
        lambda: client.v1.usage.search(transaction_ids=[marker]),
        lambda found: len(found) == 1 and found[0].processed_at is not None,
    )


def usage_value(
    client: Metronome,
    customer_id: str,
    metric_id: str,
    starting_on: datetime,
    ending_before: datetime,
) -> float | None:
    """The single NONE-window value of one metric for one customer."""
    rows = list(
        client.v1.usage.list(
            starting_on=starting_on,
            ending_before=ending_before,
            window_size="NONE",
            customer_ids=[customer_id],
            billable_metrics=[{"id": metric_id}],
        )
    )
    assert len(rows) == 1, rows
    return rows[0].value


def ingest(client: Metronome, events: Sequence[Any]) -> None:
    client.v1.usage.ingest(usage=list(events))
