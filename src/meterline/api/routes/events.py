"""Event lookup: POST /v1/events/search, to find what became of events by transaction id."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import Field

from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.billable_metrics import metric_view
from meterline.api.routes.common import StrictModel
from meterline.api.state import AppState, app_state
from meterline.domain.partitions import partition_of
from meterline.domain.timeutil import format_rfc3339
from meterline.domain.usage_fold import counted_by
from meterline.store import billable_metrics, customers, event_log, partitions, unmatched

router = APIRouter(route_class=ExactDecimalRoute)


class EventSearch(StrictModel):
    transactionIds: list[str] = Field(min_length=1, max_length=100)


@router.post("/v1/events/search")
def search_events(body: EventSearch, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.log_read() as log:
        found = event_log.find_by_transaction_ids(log, body.transactionIds)
    # Read after the log: an event found there and evaluated since shows as evaluated.
    with state.db.read() as conn:
        evaluated_up_to = partitions.positions(conn)
        outcomes = unmatched.find(conn, [e.seq for e in found])
        resolved = customers.resolve_customer_refs(conn, {e.customer_ref for e in found})
        metrics = billable_metrics.list_metrics(conn, include_archived=False, after_id=None, limit=None)
        # Also the customers of unmatched events: one archived since no longer resolves.
        unmatched_customers = {o.customer_id for o in outcomes.values() if o.customer_id is not None}
        names = customers.names_of(conn, {*resolved.values(), *unmatched_customers})
    results = []
    for event in found:
        view: dict[str, Any] = {
            "id": str(event.seq),
            "transaction_id": event.transaction_id,
            "customer_id": event.customer_ref,
            "event_type": event.event_type,
            "timestamp": format_rfc3339(event.timestamp_us),
            "properties": event.properties,
            "is_duplicate": False,
            "processed_at": None,
            "matched_customer": None,
            "matched_billable_metrics": None,
        }
        if event.seq <= evaluated_up_to.get(partition_of(event.customer_ref), 0):
            outcome = outcomes.get(event.seq)
            customer_id = outcome.customer_id if outcome else resolved.get(event.customer_ref)
            counted = outcome is None
            view["processed_at"] = format_rfc3339(event.received_at_us)
            if customer_id is not None:
                view["matched_customer"] = {"id": customer_id, "name": names.get(customer_id)}
            view["matched_billable_metrics"] = [
                metric_view(m)
                for m in metrics
                if counted and counted_by(m.rules(), event.event_type, event.properties) is not None
            ]
        results.append(view)
    return ExactJSONResponse(results)
