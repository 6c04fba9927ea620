"""Evaluating a customer's alerts against its snapshot, in the caller's transaction.

Each (alert, customer, scope) keeps a compact state. A fresh measurement changes the state only
on a transition; each ok -> in_alarm transition writes exactly one `alerts.<type>` notification
and each in_alarm -> ok one `alerts.<type>_resolved`, in the same transaction as the state, so a
transition is never lost and never notified twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from meterline.domain.alerts import (
    IN_ALARM,
    OK,
    Transition,
    breached,
    kind_of,
    spend_progress,
    transition,
    webhook_type,
)
from meterline.domain.ids import USD_CENTS_CREDIT_TYPE_ID, new_id
from meterline.domain.timeutil import format_rfc3339
from meterline.engine import billing
from meterline.engine.alert_clock import next_instant
from meterline.engine.alert_measures import CustomerView, Measurement, measurements, unmeasured
from meterline.engine.billing import BillingWindow, PricingCatalog
from meterline.engine.customer_state import CustomerState
from meterline.engine.recurring_periods import next_period_start
from meterline.engine.rollovers import next_transition
from meterline.engine.subscription_lines import next_period_starts
from meterline.store import alert_wakeups, customers
from meterline.store import alerts as store
from meterline.store.alert_resolutions import Resolution
from meterline.store.alerts import AlertRecord, AlertState, Notification

NEW_BILLING_PERIOD = "new_billing_period"
ALERT_CREATED = "alert_created"


class AlertWrites:
    """Transitions measured and not yet written: the evaluator writes a batch's in two statements
    (states, then outbox rows) instead of two per transition. Flush before anything in the same
    transaction reads alert states back (the sweeps do)."""

    def __init__(self) -> None:
        self.states: list[AlertState] = []
        self.notifications: list[tuple[Notification, int]] = []
        # What each customer's alerts measured (its headroom is computed from them: `headroom`).
        self.measured: dict[str, list[tuple[AlertRecord, Measurement]]] = {}

    def flush(self, conn: Connection) -> None:
        store.save_states(conn, self.states)
        store.add_notifications(conn, self.notifications)
        self.states, self.notifications = [], []


def evaluate_customer(
    conn: Connection,
    customer_id: str,
    now_us: int,
    triggered_by: str,
    *,
    state: CustomerState,
    only: Iterable[AlertRecord] | None = None,
    silent_first: bool = False,
    writes: AlertWrites | None = None,
    catalog: PricingCatalog | None = None,
) -> None:
    """Measure the customer's alerts (or `only` these) and record every transition.

    `state`: the customer's state, its drafts derived (`billing.derive_drafts`).
    `silent_first`: a first measurement sets the state without notifying (evaluate_on_create false).
    `writes`: the batch's pending writes, which the caller flushes (written before returning otherwise).
    `catalog`: the batch's metrics and period usage, read once for all of its customers.
    """
    pending = writes if writes is not None else AlertWrites()
    _evaluate(conn, customer_id, now_us, triggered_by, only, silent_first, state, pending, catalog)
    if writes is None:
        pending.flush(conn)


def _evaluate(
    conn: Connection,
    customer_id: str,
    now_us: int,
    triggered_by: str,
    only: Iterable[AlertRecord] | None,
    silent_first: bool,
    state: CustomerState,
    writes: AlertWrites,
    catalog: PricingCatalog | None = None,
) -> None:
    found = list(only) if only is not None else state.alerts
    if not found:
        _schedule(conn, customer_id, state, _next_clock_change(state, now_us))
        return
    view = CustomerView(conn, customer_id, now_us, state, catalog)
    _schedule_next_instant(conn, state, view)
    wanted = {a.id for a in found}
    states = {key: s for key, s in state.alert_states.items() if key[0] in wanted}
    measured = {alert_id for alert_id, _scope in states}
    if only is None and not measured.issuperset(a.id for a in found):
        found = _without_first_measurements_due_at_creation(conn, found, measured)
    measured_now = writes.measured.setdefault(customer_id, [])
    for alert in found:
        seen: set[str] = set()
        for measurement in measurements(alert, view):
            measured_now.append((alert, measurement))
            seen.add(measurement.scope)
            previous = states.get((alert.id, measurement.scope))
            _apply(writes, alert, customer_id, measurement, previous, now_us, triggered_by, silent_first)
        for (alert_id, scope), previous in states.items():
            if alert_id == alert.id and scope not in seen and previous.status == IN_ALARM:
                # Nothing left in this scope (a group value without spend this period, an expired segment).
                gone = unmeasured(alert, scope, view)
                _apply(writes, alert, customer_id, gone, previous, now_us, triggered_by, silent_first)
        if not seen and alert.id not in measured:
            # Nothing to measure yet (no usage in an open group key, no segment): measured, and ok.
            _apply(
                writes, alert, customer_id, Measurement("", None), None, now_us, triggered_by, silent_first
            )


def measure_all(
    conn: Connection, customer_id: str, state: CustomerState, now_us: int
) -> list[tuple[AlertRecord, Measurement]]:
    """Every alert of the customer measured, nothing recorded (the engine's headroom reads them)."""
    view = CustomerView(conn, customer_id, now_us, state)
    return [(alert, m) for alert in state.alerts for m in measurements(alert, view)]


def _schedule_next_instant(conn: Connection, state: CustomerState, view: CustomerView) -> None:
    """Re-measure this customer when its measures next move with the clock, or its next recurring
    period starts (`recurring_periods`)."""
    instants = [next_instant(state.alerts, view), _next_clock_change(state, view.now_us)]
    _schedule(conn, view.customer_id, state, min((t for t in instants if t is not None), default=None))


def _next_clock_change(state: CustomerState, now_us: int) -> int | None:
    """When the clock alone next changes the customer's commits or invoices: a billing period of
    a contract starts or ends (its draft is marked open, so that it is finalized whatever the
    customer has), a recurring period starts, a contract transition happens (its commits roll
    over), or a period of a subscription billed on invoices of its own starts (its draft appears)."""
    instants = [
        *(contract.schedule().next_bound(now_us) for contract in state.contracts),
        next_period_start(state, now_us),
        next_transition(state, now_us),
        *(t for contract in state.contracts for t in next_period_starts(contract, now_us)),
    ]
    return min((t for t in instants if t is not None), default=None)


def _schedule(conn: Connection, customer_id: str, state: CustomerState, due: int | None) -> None:
    """Wake the customer at `due` (None: never); written on change only."""
    if due != state.wakeup_us:
        alert_wakeups.set_wakeup(conn, customer_id, due)
        state.wakeup_us = due


def _without_first_measurements_due_at_creation(
    conn: Connection, found: list[AlertRecord], measured: set[str]
) -> list[AlertRecord]:
    """Leave a new alert not yet measured for this customer to its creation sweep (later in this
    same transaction), so its first measurement says alert_created and honours evaluate_on_create."""
    creating = store.alerts_with_pending_sweeps(conn, ALERT_CREATED)
    return [a for a in found if a.id in measured or a.id not in creating]


def _apply(
    writes: AlertWrites,
    alert: AlertRecord,
    customer_id: str,
    measurement: Measurement,
    previous: AlertState | None,
    now_us: int,
    triggered_by: str,
    silent_first: bool,
) -> None:
    kind = kind_of(alert.alert_type)
    cause = triggered_by
    if (
        previous is not None
        and kind.period_scoped
        and previous.period_start_us != measurement.period_start_us
    ):
        cause = NEW_BILLING_PERIOD
    change = transition(
        previous.status if previous else None,
        breached(kind, measurement.value, alert.threshold),
        notify_first=not silent_first,
    )
    if change is None and previous is not None and previous.period_start_us == measurement.period_start_us:
        return  # no transition: nothing to write (a measure moving below its threshold costs no write)
    state = AlertState(
        alert_id=alert.id,
        customer_id=customer_id,
        scope=measurement.scope,
        status=change.new_status if change else previous.status if previous else OK,
        triggered_by=cause if change else previous.triggered_by if previous else cause,
        measure=measurement.value,
        period_start_us=measurement.period_start_us,
        updated_at_us=now_us if change else previous.updated_at_us if previous else now_us,
    )
    writes.states.append(state)
    if change is not None and change.notify is not None:
        _notify(writes, alert, customer_id, measurement, change, now_us, cause)


def _notify(
    writes: AlertWrites,
    alert: AlertRecord,
    customer_id: str,
    measurement: Measurement,
    change: Transition,
    now_us: int,
    cause: str,
) -> None:
    properties = notification_properties(alert, customer_id, now_us, cause)
    properties[kind_of(alert.alert_type).measure.value] = measurement.value
    properties.update(measurement.extra)
    properties.update(spend_progress(alert.alert_type, alert.threshold, measurement.value))
    resolved = change.notify == "resolved"
    notification = Notification(
        new_id(), webhook_type(alert.alert_type, resolved), alert.id, customer_id, properties
    )
    writes.notifications.append((notification, now_us))


def notification_properties(alert: AlertRecord, customer_id: str, now_us: int, cause: str) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "alert_id": alert.id,
        "alert_name": alert.name,
        "alert_type": alert.alert_type.value,
        "threshold": alert.threshold,
        "credit_type_id": alert.credit_type_id or USD_CENTS_CREDIT_TYPE_ID,
        "timestamp": format_rfc3339(now_us),
        "triggered_by": cause,
    }


def apply_resolutions(
    conn: Connection, resolutions: Iterable[Resolution], window: BillingWindow
) -> tuple[set[str], set[str]]:
    """Resolve what the API asked for (an archived alert, a reset); returns the customers to
    measure again (reset) and every customer whose alert states were written."""
    remeasure: set[str] = set()
    written: set[str] = set()
    for request in resolutions:
        alert = store.get_alert(conn, request.alert_id)
        states = store.states_of_alert(conn, alert.id)
        if request.customer_id:
            states = [s for s in states if s.customer_id == request.customer_id]
        else:
            homes = customers.home_partitions(conn, {s.customer_id for s in states})
            states = [s for s in states if homes.get(s.customer_id) == request.partition]
        resolve_states(conn, alert, states, window, request.cause)
        written |= {s.customer_id for s in states}
        if request.customer_id:
            store.forget_states(conn, alert.id, request.customer_id)  # measured afresh: a reset
            remeasure.add(request.customer_id)
    return remeasure, written | remeasure


def resolve_states(
    conn: Connection, alert: AlertRecord, states: Iterable[AlertState], window: BillingWindow, cause: str
) -> None:
    """Return in-alarm states to ok (an archived alert, a reset), notifying each as resolved.

    The notification carries the measure as it is now, with its scope's details (group values,
    commit segment), not the one recorded at the last transition.
    """
    now_us = window.now_us
    in_alarm = [s for s in states if s.status == IN_ALARM]
    customer_states = billing.with_drafts(conn, sorted({s.customer_id for s in in_alarm}), window)
    views: dict[str, tuple[CustomerView, dict[str, Measurement]]] = {}
    for state in in_alarm:
        if state.customer_id not in views:
            view = CustomerView(conn, state.customer_id, now_us, customer_states[state.customer_id])
            views[state.customer_id] = (view, {m.scope: m for m in measurements(alert, view)})
        view, current = views[state.customer_id]
        measurement = current.get(state.scope) or unmeasured(alert, state.scope, view)
        measure = measurement.value
        store.save_state(
            conn,
            AlertState(
                state.alert_id,
                state.customer_id,
                state.scope,
                OK,
                cause,
                measure,
                state.period_start_us,
                now_us,
            ),
        )
        properties = notification_properties(alert, state.customer_id, now_us, cause)
        properties[kind_of(alert.alert_type).measure.value] = measure if measure is not None else Decimal(0)
        properties.update(measurement.extra)
        properties.update(spend_progress(alert.alert_type, alert.threshold, measure))
        store.add_notification(
            conn,
            Notification(
                new_id(), webhook_type(alert.alert_type, True), alert.id, state.customer_id, properties
            ),
            now_us,
        )
