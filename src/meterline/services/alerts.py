"""Alerts: the rules a new alert must meet, archiving one, and a customer's view of one.

A new alert is evaluated by the evaluator (never in the request): `create_alert` stores it and
starts its sweep, for one customer at once or for every customer in bounded chunks. Archiving an
alert, or resetting it for a customer, records a request the engine applies in its next batch
(it alone writes alert states), so an application blocking a customer on the alert learns it no
longer applies, exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from meterline.domain.alerts import AlertType, Measure, blocking_refusal, kind_of
from meterline.domain.errors import Conflict, InvalidInput, NotFound
from meterline.domain.ids import USD_CENTS_CREDIT_TYPE_ID
from meterline.domain.partitions import PARTITION_COUNT
from meterline.engine.alert_sweeps import TRIGGERED_BY_CREATION
from meterline.services.customers import active_customer
from meterline.store import alert_resolutions, billable_metrics, credit_types, customers
from meterline.store import alerts as store
from meterline.store.alerts import AlertRecord

INVOICE_TYPES = {"USAGE", "SCHEDULED", "USAGE_CONSOLIDATED", "TRUEUP"}
KEY_USED = "This uniqueness key has already been used."
UNSUPPORTED_FIELDS = {
    "credit_grant_type_filters": "meterline has no legacy credit grants; filter contract credits with custom_field_filters",
    "plan_id": "legacy plans are not supported by meterline; alerts apply to contracts",
    "alert_specifiers": "alert specifiers are not supported by meterline yet; use custom_field_filters",
}


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert as requested (`create_alert` checks it)."""

    alert_type: AlertType
    name: str
    threshold: Decimal
    billable_metric_id: str | None = None
    credit_type_id: str | None = None
    customer_id: str | None = None
    evaluate_on_create: bool = True
    uniqueness_key: str | None = None
    invoice_types_filter: list[str] | None = None
    group_values: list[dict[str, Any]] | None = None  # [{"key", "value" (None: every value)}]
    # low_remaining_seat_balance_reached: {"seat_group_key", "seat_group_value" (absent: every seat)}
    seat_filter: dict[str, str] | None = None
    custom_field_filters: list[dict[str, Any]] | None = None
    access_type: str | None = None
    # meterline's extension: the customer is denied access while the alert is in alarm for it.
    blocking: bool = False
    spend_limit: str | None = None  # "soft" or "hard": set by `services.spend_limits` only
    # meterline's extension: a spend_forecast_reached alert's pace window (None: the default).
    forecast_window_hours: int | None = None
    # Metronome fields meterline refuses (UNSUPPORTED_FIELDS): kept to say so by name.
    credit_grant_type_filters: list[str] | None = None
    plan_id: str | None = None
    alert_specifiers: list[dict[str, Any]] | None = None


def create_alert(conn: Connection, new: NewAlert) -> str:
    check_combinations(new)
    _check_references(conn, new)
    if new.uniqueness_key is not None and store.uniqueness_key_taken(conn, new.uniqueness_key):
        raise Conflict(KEY_USED)
    alert_id = store.create_alert(conn, _values(new))
    store.start_sweep(conn, alert_id, TRIGGERED_BY_CREATION, _sweep_partitions(conn, new.customer_id))
    return alert_id


def archive_alert(conn: Connection, alert_id: str, release_uniqueness_key: bool) -> None:
    alert = store.archive_alert(conn, alert_id, release_uniqueness_key)
    if alert.archived_at_us is None:
        # An application blocking a customer on this alert learns it no longer applies: the
        # engine resolves the in-alarm states (it alone writes them) and notifies each.
        home = customers.home_partitions(conn, [alert.customer_id]) if alert.customer_id else {}
        alert_resolutions.request_for_alert(
            conn, alert.id, "alert_archived", home=next(iter(home.values()), None)
        )


def reset_customer_alert(conn: Connection, alert_id: str, customer_id: str) -> None:
    """Forget the customer's states of the alert (resolving an alarm) and measure it afresh: the
    engine, which alone writes alert states, does all three in one batch."""
    customers.get_customer(conn, customer_id)
    alert = alert_for_customer(conn, alert_id, customer_id)
    [home] = customers.home_partitions(conn, [customer_id]).values()
    alert_resolutions.request_for_customer(conn, alert.id, customer_id, home, "reset")


def alert_for_customer(conn: Connection, alert_id: str, customer_id: str) -> AlertRecord:
    """The alert, if it applies to the customer (its own, or an all-customers one); else 404."""
    alert = store.get_alert(conn, alert_id)
    if alert.customer_id is not None and alert.customer_id != customer_id:
        raise NotFound(f"alert_id: alert {alert_id} does not apply to customer {customer_id}")
    return alert


def _sweep_partitions(conn: Connection, customer_id: str | None) -> list[int]:
    """Whose engines measure a new alert: the customer's home partition, or every partition."""
    if customer_id is None:
        return list(range(PARTITION_COUNT))
    return list(customers.home_partitions(conn, [customer_id]).values())


def check_combinations(new: NewAlert) -> None:
    """Which fields each alert type takes, and what meterline does not support."""
    for name, why in UNSUPPORTED_FIELDS.items():
        if getattr(new, name) is not None:
            raise InvalidInput(f"{name}: {why}")
    if new.access_type == "QUANTITY":
        raise InvalidInput(
            "access_type: QUANTITY balances are not supported by meterline; every balance is SPEND"
        )
    kind = kind_of(new.alert_type)
    if kind.uses_metric and not new.billable_metric_id:
        raise InvalidInput(f"billable_metric_id: is required for {new.alert_type.value} alerts")
    if not kind.uses_metric and new.billable_metric_id:
        raise InvalidInput(
            f"billable_metric_id: only usage_threshold_reached alerts take one, not {new.alert_type.value}"
        )
    if new.invoice_types_filter is not None and kind.measure is not Measure.INVOICE_TOTAL:
        raise InvalidInput("invoice_types_filter: only invoice total alerts take one")
    unknown = set(new.invoice_types_filter or ()) - INVOICE_TYPES
    if unknown:
        raise InvalidInput(f"invoice_types_filter: unknown invoice type {sorted(unknown)[0]!r}")
    if kind.per_seat and new.seat_filter is None:
        raise InvalidInput(f"seat_filter: is required for {new.alert_type.value} alerts")
    if new.seat_filter is not None and not kind.per_seat:
        raise InvalidInput("seat_filter: only low_remaining_seat_balance_reached alerts take one")
    if new.group_values and new.alert_type is not AlertType.SPEND_THRESHOLD_REACHED:
        raise InvalidInput("group_values: only spend_threshold_reached alerts take them")
    if new.custom_field_filters and kind.pool is None:
        raise InvalidInput(
            f"custom_field_filters: {new.alert_type.value} alerts do not look at commits or credits"
        )
    if kind.measure is Measure.PERCENTAGE and new.threshold > 100:
        raise InvalidInput("threshold: a percentage must be between 0 and 100")
    if new.forecast_window_hours is not None and new.alert_type is not AlertType.SPEND_FORECAST_REACHED:
        raise InvalidInput("forecast_window_hours: only spend_forecast_reached alerts take one")
    if new.blocking:
        _check_blocking(new)


def _check_blocking(new: NewAlert) -> None:
    why = blocking_refusal(new.alert_type)
    if why is not None:
        raise InvalidInput(f"blocking: {why}")
    if not new.evaluate_on_create:
        # Its first measurement would put a customer already past the threshold in alarm without
        # a notification: access denied, and nobody told.
        raise InvalidInput(
            "blocking: a blocking alert is evaluated on creation (evaluate_on_create must not be "
            "false), so a customer already past its threshold is denied access and notified at once"
        )


def _check_references(conn: Connection, new: NewAlert) -> None:
    if new.customer_id is not None:
        active_customer(conn, new.customer_id)
    # A body naming what does not exist is a bad request (the customer is the resource: 404).
    if new.credit_type_id is not None:
        try:
            credit_type = credit_types.get_credit_type(conn, new.credit_type_id)
        except NotFound as missing:
            raise InvalidInput(missing.message) from None
        if credit_type.archived_at_us is not None:
            raise InvalidInput(f"credit_type_id: pricing unit {credit_type.id} is archived")
    if new.billable_metric_id is not None:
        try:
            metric = billable_metrics.get_metric(conn, new.billable_metric_id)
        except NotFound as missing:
            raise InvalidInput(missing.message) from None
        if metric.archived_at_us is not None:
            raise InvalidInput(f"billable_metric_id: billable metric {metric.id} is archived")
    if new.group_values:
        keys = [g["key"] for g in new.group_values]
        if len(set(keys)) != len(keys):
            raise InvalidInput("group_values: each key may appear once")


def _values(new: NewAlert) -> dict[str, Any]:
    kind = kind_of(new.alert_type)
    money = kind.measure in (
        Measure.SPEND,
        Measure.PROJECTED_SPEND,
        Measure.INVOICE_TOTAL,
        Measure.BALANCE,
        Measure.PERCENTAGE,
    )
    return {
        "name": new.name,
        "alert_type": new.alert_type.value,
        "threshold": new.threshold,
        "credit_type_id": (new.credit_type_id or USD_CENTS_CREDIT_TYPE_ID) if money else new.credit_type_id,
        "customer_id": new.customer_id,
        "billable_metric_id": new.billable_metric_id,
        "invoice_types_filter": new.invoice_types_filter,
        "group_values": new.group_values or None,
        "seat_filter": new.seat_filter,
        "custom_field_filters": new.custom_field_filters or None,
        "credit_grant_type_filters": None,
        "evaluate_on_create": new.evaluate_on_create,
        "uniqueness_key": new.uniqueness_key,
        "blocking": new.blocking,
        "spend_limit": new.spend_limit,
        "forecast_window_hours": new.forecast_window_hours,
    }
