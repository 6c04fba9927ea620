"""Spend limits (meterline's extension): a customer's soft and hard limit in a credit type, set in
one call instead of the archive and re-create dance.

Underneath, each limit is an ordinary `spend_threshold_reached` alert for the customer, visible in
/v1/customer-alerts/list and notified like any other, marked with the limit it is (the hard one
also blocks access: `services.access`). Alerts have no update, so a changed limit is a new alert
and the old one archived, through the same services as /v1/alerts/create and /archive, in one
transaction: the new alert first, so there is never a moment without a limit; the archived one is
resolved by the engine (a `_resolved` notification if it was in alarm) in the same batch that
measures the new one. An unchanged limit keeps its alert, so its notice is never sent twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection

from meterline.domain.alerts import IN_ALARM, AlertType
from meterline.domain.errors import InvalidInput, NotFound
from meterline.domain.ids import USD_CENTS_CREDIT_TYPE_ID
from meterline.domain.spend_pace import Pace, pace_window_start
from meterline.engine import billing
from meterline.engine.alert_measures import CustomerView, period_spend
from meterline.engine.customer_state import CustomerState
from meterline.services import alerts as alert_service
from meterline.services.alerts import NewAlert
from meterline.services.customers import active_customer
from meterline.store import alerts, credit_types, customers
from meterline.store.alerts import AlertRecord

SOFT, HARD = "soft", "hard"
LIMITS = (SOFT, HARD)
NAMES = {SOFT: "Soft spend limit", HARD: "Hard spend limit"}
OK, SOFT_REACHED, HARD_REACHED = "ok", "soft_limit_reached", "hard_limit_reached"


class OwnLimitRefused(InvalidInput):
    """An end customer's own change refused: `field` must be at most `most` (USD cents), or, with
    `most` None, cannot be removed."""

    def __init__(self, field: str, message: str, most: Decimal | None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.most = most


@dataclass(frozen=True, slots=True)
class SpendLimitView:
    customer_id: str
    credit_type_id: str
    soft_limit: Decimal | None
    hard_limit: Decimal | None
    current_spend: Decimal
    status: str
    soft_limit_alert_id: str | None
    hard_limit_alert_id: str | None


def set_limits(
    conn: Connection, customer_id: str, credit_type_id: str | None, changes: Mapping[str, Decimal | None]
) -> None:
    """Apply `changes` ("soft" and/or "hard": a new limit, or None to remove it; a limit not named
    stays as it is) to the customer's limits in the credit type (USD cents by default)."""
    active_customer(conn, customer_id)
    customers.lock(conn, customer_id)  # two changes of the same customer's limits, one at a time
    credit_type = credit_type_asked(conn, credit_type_id, for_change=False)
    current = _limits_in_force(conn, [customer_id]).get((customer_id, credit_type), {})
    if any(v is not None and v != _threshold(current.get(k)) for k, v in changes.items()):
        credit_type_asked(conn, credit_type, for_change=True)  # no new limit in an archived unit
    wanted = {kind: changes.get(kind, _threshold(current.get(kind))) for kind in LIMITS}
    soft, hard = wanted[SOFT], wanted[HARD]
    if soft is not None and hard is not None and soft > hard:
        raise InvalidInput(f"soft_limit: must be at most hard_limit ({hard}), not {soft}")
    replaced: list[AlertRecord] = []
    for kind in LIMITS:
        old = current.get(kind)
        if kind not in changes or _threshold(old) == changes[kind]:
            continue  # unchanged: its alert (and its state, and what it notified) stays
        threshold = changes[kind]
        if threshold is not None:
            alert_service.create_alert(conn, _new_limit(customer_id, credit_type, kind, threshold))
        if old is not None:
            replaced.append(old)
    for old in replaced:  # after the new alerts: never a moment without a limit
        alert_service.archive_alert(conn, old.id, release_uniqueness_key=False)


def set_own_limits(
    conn: Connection, customer_id: str, changes: Mapping[str, Decimal | None], maximum: Decimal
) -> None:
    """The end customer's own change (the spend_limits dashboard), in USD cents: a limit it changes
    must be at most `maximum`, the operator's; a hard limit cannot be removed there (no limit is
    more than any maximum). A limit it leaves as it is stays, even above the maximum."""
    active_customer(conn, customer_id)
    customers.lock(conn, customer_id)  # what is compared is what is changed
    current = _limits_in_force(conn, [customer_id]).get((customer_id, USD_CENTS_CREDIT_TYPE_ID), {})
    changed = {k: v for k, v in changes.items() if v != _threshold(current.get(k))}
    for kind, value in changed.items():
        if value is None and kind == HARD:
            raise OwnLimitRefused(
                "hard_limit", f"cannot be removed here; the most it may be is {maximum}", None
            )
        if value is not None and value > maximum:
            raise OwnLimitRefused(f"{kind}_limit", f"must be at most {maximum}, not {value}", maximum)
    soft = changed.get(SOFT, _threshold(current.get(SOFT)))
    hard = changed.get(HARD, _threshold(current.get(HARD)))
    if soft is not None and hard is not None and soft > hard:
        raise OwnLimitRefused("soft_limit", f"must be at most hard_limit ({hard}), not {soft}", hard)
    set_limits(conn, customer_id, None, changed)


def limits_with_pace(
    conn: Connection, customer_id: str, now_us: int, open_horizon_us: int
) -> tuple[SpendLimitView, Pace]:
    """The customer's limits in USD cents (as `limits_of`) and its spend's pace
    (`domain.spend_pace`): the drafts derived once from all the usage, then again from the usage
    before the pace window only, on the same loaded state and catalog."""
    customers.get_customer(conn, customer_id)
    credit_type = USD_CENTS_CREDIT_TYPE_ID
    window = billing.billing_window(now_us, open_horizon_us)
    catalog = billing.PricingCatalog(conn, [customer_id])
    billed = billing.with_drafts(conn, [customer_id], window, catalog)
    [view] = views(conn, [(customer_id, credit_type)], now_us, open_horizon_us, billed)
    period = CustomerView(conn, customer_id, now_us, billed[customer_id]).current_period
    since_us = pace_window_start(now_us, period.start_us)
    catalog.leave_out_usage_from(since_us)
    billing.derive_drafts(billed[customer_id], window, catalog)
    before = period_spend(CustomerView(conn, customer_id, now_us, billed[customer_id]), credit_type)
    return view, Pace(view.current_spend, before, since_us, now_us, period.end_us)


def limits_of(
    conn: Connection, customer_id: str, credit_type_id: str | None, now_us: int, open_horizon_us: int
) -> SpendLimitView:
    """The customer's limits in the credit type (none set: both null), with spend and status."""
    customers.get_customer(conn, customer_id)
    credit_type = credit_type_asked(conn, credit_type_id, for_change=False)
    [view] = views(conn, [(customer_id, credit_type)], now_us, open_horizon_us)
    return view


def page_of_limits(
    conn: Connection,
    after: tuple[str, str] | None,
    limit: int,
    credit_type_id: str | None,
    now_us: int,
    open_horizon_us: int,
) -> list[SpendLimitView]:
    """Up to `limit` (customer, credit type) with a limit in force, after `after`, in that order."""
    if credit_type_id is not None:
        credit_type_asked(conn, credit_type_id, for_change=False)
    keys = alerts.spend_limited_after(conn, after, limit, credit_type_id)
    return views(conn, keys, now_us, open_horizon_us)


def views(
    conn: Connection,
    keys: Sequence[tuple[str, str]],
    now_us: int,
    open_horizon_us: int,
    billed: Mapping[str, CustomerState] | None = None,
) -> list[SpendLimitView]:
    """Each (customer, credit type)'s limits, spend and status, read for all of them at once
    (`billed`: the customers' states with their drafts, if derived already)."""
    customer_ids = sorted({c for c, _ in keys})
    in_force = _limits_in_force(conn, customer_ids)
    states = alerts.states_for_customers(conn, customer_ids)
    if billed is None:
        billed = billing.with_drafts(conn, customer_ids, billing.billing_window(now_us, open_horizon_us))
    found = []
    for customer_id, credit_type in keys:
        limits = in_force.get((customer_id, credit_type), {})
        spend = period_spend(CustomerView(conn, customer_id, now_us, billed[customer_id]), credit_type)
        in_alarm = {alert_id for (alert_id, _scope), s in states[customer_id].items() if s.status == IN_ALARM}
        measured = {alert_id for alert_id, _scope in states[customer_id]}
        found.append(_view(customer_id, credit_type, limits, spend, in_alarm, measured))
    return found


def _view(
    customer_id: str,
    credit_type: str,
    limits: dict[str, AlertRecord],
    spend: Decimal,
    in_alarm: set[str],
    measured: set[str],
) -> SpendLimitView:
    def reached(kind: str) -> bool:
        alert = limits.get(kind)
        if alert is None:
            return False
        if alert.id in measured:
            return alert.id in in_alarm  # as the engine decided (and notified)
        return spend >= alert.threshold  # set a moment ago: what its first measurement will say

    status = HARD_REACHED if reached(HARD) else SOFT_REACHED if reached(SOFT) else OK
    soft, hard = limits.get(SOFT), limits.get(HARD)
    return SpendLimitView(
        customer_id=customer_id,
        credit_type_id=credit_type,
        soft_limit=_threshold(soft),
        hard_limit=_threshold(hard),
        current_spend=spend,
        status=status,
        soft_limit_alert_id=soft.id if soft else None,
        hard_limit_alert_id=hard.id if hard else None,
    )


def _limits_in_force(
    conn: Connection, customer_ids: Sequence[str]
) -> dict[tuple[str, str], dict[str, AlertRecord]]:
    found: dict[tuple[str, str], dict[str, AlertRecord]] = {}
    for alert in alerts.spend_limit_alerts(conn, customer_ids):
        assert alert.customer_id is not None and alert.spend_limit is not None
        key = (alert.customer_id, alert.credit_type_id or USD_CENTS_CREDIT_TYPE_ID)
        found.setdefault(key, {})[alert.spend_limit] = alert  # the newest, should two ever exist
    return found


def _new_limit(customer_id: str, credit_type: str, kind: str, threshold: Decimal) -> NewAlert:
    return NewAlert(
        alert_type=AlertType.SPEND_THRESHOLD_REACHED,
        name=NAMES[kind],
        threshold=threshold,
        credit_type_id=credit_type,
        customer_id=customer_id,
        blocking=kind == HARD,
        spend_limit=kind,
    )


def _threshold(alert: AlertRecord | None) -> Decimal | None:
    return alert.threshold if alert is not None else None


def credit_type_asked(conn: Connection, credit_type_id: str | None, *, for_change: bool) -> str:
    """The credit type asked for (USD cents by default); a body naming one that does not exist is a
    bad request, and `for_change`, so is an archived one."""
    wanted = credit_type_id or USD_CENTS_CREDIT_TYPE_ID
    try:
        credit_type = credit_types.get_credit_type(conn, wanted)
    except NotFound as missing:
        raise InvalidInput(missing.message) from None
    if for_change and credit_type.archived_at_us is not None:
        raise InvalidInput(f"credit_type_id: pricing unit {credit_type.id} is archived")
    return credit_type.id
