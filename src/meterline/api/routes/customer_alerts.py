"""Customer alert status: POST /v1/customer-alerts/get, /list and /reset."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Response

from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.pagination import Page, paged
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import StrictModel
from meterline.api.state import AppState, app_state, wake_evaluator
from meterline.domain.alerts import EVALUATING, IN_ALARM, OK, group_scope, seat_scope
from meterline.domain.errors import InvalidInput
from meterline.domain.timeutil import format_rfc3339
from meterline.services import alerts as service
from meterline.store import alerts as store
from meterline.store import credit_types, customers
from meterline.store.alerts import AlertRecord, AlertState

router = APIRouter(route_class=ExactDecimalRoute)


class GroupValue(StrictModel):
    key: str
    value: str


class SeatFilter(StrictModel):
    seat_group_key: str
    seat_group_value: str


class CustomerAlertGet(StrictModel):
    alert_id: str
    customer_id: str
    group_values: list[GroupValue] | None = None
    seat_filter: SeatFilter | None = None  # a seat balance alert's state for this one seat
    plans_or_contracts: Literal["PLANS", "CONTRACTS"] | None = None


class CustomerAlertList(StrictModel):
    customer_id: str
    alert_statuses: list[Literal["ENABLED", "DISABLED", "ARCHIVED"]] | None = None


class CustomerAlertReset(StrictModel):
    alert_id: str
    customer_id: str


@router.post("/v1/customer-alerts/get")
def get_customer_alert(body: CustomerAlertGet, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.read() as conn:
        customers.get_customer(conn, body.customer_id)
        alert = service.alert_for_customer(conn, body.alert_id, body.customer_id)
        states = [s for (_a, _s), s in store.states_of(conn, body.customer_id, [alert.id]).items()]
        names = credit_types.names_by_id(conn)
    scope = _seat_scope(alert, body.seat_filter) if body.seat_filter else _scope(alert, body.group_values)
    chosen = [s for s in states if scope is None or s.scope == scope]
    if states and not chosen:
        # Measured for this customer, nothing yet in these group values: ok.
        chosen = [
            AlertState(alert.id, body.customer_id, scope or "", OK, None, None, None, alert.updated_at_us)
        ]
    return ExactJSONResponse({"data": customer_alert_view(alert, chosen, names)})


@router.post("/v1/customer-alerts/list")
def list_customer_alerts(
    body: CustomerAlertList,
    state: AppState = Depends(app_state),
    asked: Page[str] = Depends(paged("customer_alerts", str)),
) -> ExactJSONResponse:
    wanted = set(body.alert_statuses or ["ENABLED"])
    after = asked.after
    with state.db.read() as conn:
        customers.get_customer(conn, body.customer_id)
        found = [
            a
            for a in store.alerts_for_customer(conn, body.customer_id, include_archived="ARCHIVED" in wanted)
            if ("ARCHIVED" if a.archived_at_us else "ENABLED") in wanted
        ]
        found.sort(key=lambda a: a.id)
        found = [a for a in found if after is None or a.id > after][: asked.size + 1]
        states = store.states_of(conn, body.customer_id, [a.id for a in found])
        names = credit_types.names_by_id(conn)
    page, cursor = asked.cut(found, lambda a: a.id)
    views = [
        customer_alert_view(a, [s for (alert_id, _scope), s in states.items() if alert_id == a.id], names)
        for a in page
    ]
    return ExactJSONResponse({"data": views, "next_page": cursor})


@router.post("/v1/customer-alerts/reset")
def reset_customer_alert(body: CustomerAlertReset, state: AppState = Depends(app_state)) -> Response:
    with state.db.write() as conn:
        service.reset_customer_alert(conn, body.alert_id, body.customer_id)
    wake_evaluator(state)
    return Response(status_code=200)


def customer_alert_view(
    alert: AlertRecord, states: list[AlertState], names: dict[str, str]
) -> dict[str, Any]:
    view = _metronome_view(alert, states, names)
    if alert.blocking:
        # meterline's extension, shown only where it was asked for: every other alert reads back
        # exactly as Metronome's.
        view["alert"]["blocking"] = True
    return view


def _metronome_view(alert: AlertRecord, states: list[AlertState], names: dict[str, str]) -> dict[str, Any]:
    return {
        "customer_status": None if alert.archived_at_us else _status(states),
        "triggered_by": _latest(states).triggered_by if states else None,
        "alert": {
            "id": alert.id,
            "name": alert.name,
            "type": alert.alert_type.value,
            "status": "archived" if alert.archived_at_us else "enabled",
            "threshold": alert.threshold,
            "updated_at": format_rfc3339(max([alert.updated_at_us, *(s.updated_at_us for s in states)])),
            "credit_type": {"id": alert.credit_type_id, "name": names.get(alert.credit_type_id, "")}
            if alert.credit_type_id
            else None,
            "custom_field_filters": alert.custom_field_filters,
            "group_values": alert.group_values,
            **({"seat_filter": alert.seat_filter} if alert.seat_filter is not None else {}),
            "invoice_types_filter": alert.invoice_types_filter,
            "credit_grant_type_filters": alert.credit_grant_type_filters,
            "uniqueness_key": alert.uniqueness_key,
        },
    }


def _status(states: list[AlertState]) -> str:
    if not states:
        return EVALUATING
    return IN_ALARM if any(s.status == IN_ALARM for s in states) else _latest(states).status


def _latest(states: list[AlertState]) -> AlertState:
    return max(states, key=lambda s: s.updated_at_us)


def _seat_scope(alert: AlertRecord, seat_filter: SeatFilter) -> str:
    """The state scope of one seat of a seat balance alert (400 naming the field otherwise)."""
    if alert.seat_filter is None:
        raise InvalidInput(
            f"seat_filter: alert {alert.id} is a {alert.alert_type.value} alert; only "
            "low_remaining_seat_balance_reached alerts are measured per seat"
        )
    if seat_filter.seat_group_key != alert.seat_filter["seat_group_key"]:
        raise InvalidInput(
            f"seat_filter.seat_group_key: alert {alert.id} measures seats of "
            f"{alert.seat_filter['seat_group_key']!r}, not {seat_filter.seat_group_key!r}"
        )
    return seat_scope(seat_filter.seat_group_key, seat_filter.seat_group_value)


def _scope(alert: AlertRecord, group_values: list[GroupValue] | None) -> str | None:
    """The state scope a request names: per group value for spend alerts on an open group key."""
    open_keys = [g["key"] for g in alert.group_values or () if g.get("value") is None]
    if not open_keys or not group_values:
        return None
    given = {g.key: g.value for g in group_values}
    return group_scope({k: given.get(k, "") for k in open_keys})
