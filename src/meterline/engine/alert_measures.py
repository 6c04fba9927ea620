"""What each alert measures for one customer, read from the billing snapshot and usage aggregates.

A `CustomerView` is loaded once per customer per evaluation; each alert then yields one or more
`Measurement`s (one per scope: per commit segment for the days-per-segment types, per group
value for spend alerts scoped to a group key without a value).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any

from sqlalchemy import Connection

from meterline.domain.aggregation import merged
from meterline.domain.alerts import (
    DEFAULT_FORECAST_WINDOW_HOURS,
    AlertKind,
    AlertType,
    Measure,
    Pool,
    group_scope,
    kind_of,
    scope_group_values,
)
from meterline.domain.contracts import CREDIT, CommitTerms, ContractTerms
from meterline.domain.ids import USD_CENTS_CREDIT_TYPE_ID
from meterline.domain.invoicing import UsageLine
from meterline.domain.metrics import AggregationType
from meterline.domain.periods import Period, default_billing_period
from meterline.domain.spend_pace import (
    Pace,
    pace_window_start,
    projected_spend,
    projection_per_spend,
    threshold_reached_at,
)
from meterline.domain.timeutil import US_PER_DAY, format_rfc3339
from meterline.engine.billing import PricingCatalog, priced_period
from meterline.engine.customer_state import CustomerState
from meterline.store import balances, billable_metrics, commits, contracts
from meterline.store.alerts import AlertRecord
from meterline.store.balances import CommitBalance
from meterline.store.commits import CommitQuery
from meterline.store.invoices import DATED, DRAFT, InvoiceRecord
from meterline.store.period_usage import usage_by_group

ZERO = Decimal(0)
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Measurement:
    scope: str
    value: Decimal | None
    period_start_us: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # the notification's scope details
    # How far the measure moves for one unit of spend (a percentage: 100 / what was granted).
    per_spend: Decimal = Decimal(1)


class CustomerView:
    """The customer's billing state at `now_us`, loaded lazily so each alert pays only for what it reads."""

    def __init__(
        self,
        conn: Connection,
        customer_id: str,
        now_us: int,
        state: CustomerState,
        catalog: PricingCatalog | None = None,
    ):
        self.conn = conn
        self.customer_id = customer_id
        self.now_us = now_us
        self.state = state  # its drafts derived
        # The batch's catalog, when there is one: metrics and period usage read once for the batch.
        self.catalog = catalog
        self._paces: dict[tuple[str, int], Pace] = {}

    def aggregation(self, metric_id: str) -> AggregationType:
        if self.catalog is not None:
            return self.catalog.aggregations((metric_id,))[metric_id]
        return AggregationType(billable_metrics.get_metric(self.conn, metric_id).aggregation_type)

    @cached_property
    def contracts(self) -> list[ContractTerms]:
        return self.state.contracts

    @cached_property
    def current_invoices(self) -> list[InvoiceRecord]:
        return [
            inv
            for inv in self.state.invoices
            if inv.status == DRAFT and inv.start_us <= self.now_us < inv.end_us
        ]

    @cached_property
    def scheduled_drafts(self) -> list[InvoiceRecord]:
        """SCHEDULED and TRUEUP drafts: each is active from the moment its schedule exists until
        its date."""
        return [inv for inv in self.state.invoices if inv.status == DRAFT and inv.type in DATED]

    @cached_property
    def balances(self) -> dict[str, CommitBalance]:
        deductions = self.state.deductions
        rollouts = self.state.rollouts()
        return {
            c.id: balances.balance_of(c, deductions, self.now_us, with_ledger=False, rollouts=rollouts)
            for c in self.state.commits
        }

    @cached_property
    def drawn_by_segment(self) -> dict[str, Decimal]:
        """What invoices (drafts included) have drawn from each segment: read once per view,
        however many seats' balances are measured from it."""
        drawn: dict[str, Decimal] = {}
        for _commit, segment_id, _invoice, amount, _when in self.state.deductions:
            drawn[segment_id] = drawn.get(segment_id, ZERO) + amount
        return drawn

    @cached_property
    def commit_custom_fields(self) -> dict[str, dict[str, str]]:
        query = CommitQuery(kinds=("PREPAID", "POSTPAID", CREDIT), include_contract_level=True)
        found = commits.list_commits(self.conn, self.customer_id, query, after_id=None, limit=100_000)
        return {c.id: c.custom_fields for c in found}

    @cached_property
    def contract_custom_fields(self) -> dict[str, dict[str, str]]:
        found = contracts.list_contracts(self.conn, self.customer_id)
        return {c.id: c.custom_fields for c in found}

    def spend_pace(self, credit_type_id: str, window_hours: int) -> Pace:
        """The pace of the period's spend over the last `window_hours` hours (`domain.spend_pace`):
        the current drafts priced again from the usage before the window only (kept per window)."""
        key = (credit_type_id, window_hours)
        if key not in self._paces:
            period = self.current_period
            since_us = pace_window_start(self.now_us, period.start_us, window_hours)
            spend_now = period_spend(self, credit_type_id)
            before = self._spend_before(since_us, credit_type_id) if since_us > period.start_us else ZERO
            self._paces[key] = Pace(spend_now, before, since_us, self.now_us, period.end_us)
        return self._paces[key]

    def _spend_before(self, since_us: int, credit_type_id: str) -> Decimal:
        catalog = (self.catalog or PricingCatalog(self.conn, [self.customer_id])).before(since_us)
        contracts = {c.id: c for c in self.contracts}
        spend = ZERO
        for inv in self.current_invoices:
            contract = contracts.get(inv.contract_id)
            if contract is not None:
                record, _ = priced_period(
                    catalog, self.state, contract, Period(inv.start_us, inv.end_us), self.now_us
                )
                spend += record.spend_by_credit_type.get(credit_type_id, ZERO)
        return spend

    @cached_property
    def current_period(self) -> Period:
        """The billing period in force now: the first contract's, else the calendar month."""
        for contract in self.contracts:
            period = contract.schedule().period_containing(self.now_us)
            if period is not None:
                return period
        return default_billing_period(self.now_us)


def measurements(alert: AlertRecord, view: CustomerView) -> Iterator[Measurement]:
    kind = kind_of(alert.alert_type)
    if kind.measure is Measure.SPEND:
        yield from _spend(alert, view)
    elif kind.measure is Measure.INVOICE_TOTAL:
        yield _invoice_total(alert, view)
    elif kind.measure is Measure.USAGE:
        yield _usage(alert, view)
    elif kind.measure is Measure.DAYS and kind.per_segment:
        yield from _segment_days(alert, kind, view)
    elif kind.measure is Measure.DAYS:
        yield _days_in_plan(view)
    elif kind.measure is Measure.PROJECTED_SPEND:
        yield _forecast(alert, view)
    elif kind.per_seat:
        yield from _seat_balances(alert, kind, view)
    else:
        yield _balance(alert, kind, view)


def unmeasured(alert: AlertRecord, scope: str, view: CustomerView) -> Measurement:
    """What a scope measures once nothing is left in it: no spend in these group values (this
    period), or a segment no longer accessible (nothing to measure)."""
    extra: dict[str, Any] = {}
    if kind_of(alert.alert_type).measure is Measure.SPEND:
        values = scope_group_values(scope)
        fixed = {g["key"]: g["value"] for g in alert.group_values or () if g.get("value") is not None}
        if values is not None:
            extra["group_values"] = _group_values({**fixed, **values})
        return Measurement(scope, ZERO, view.current_period.start_us, extra)
    if kind_of(alert.alert_type).per_seat:
        return Measurement(scope, None, None, _seat_extra(alert, scope_group_values(scope)))
    extra["segment_id"] = scope
    for entry in view.balances.values():
        if any(s.id == scope for s in entry.commit.segments):
            extra = {"commit_id": entry.commit.id, "segment_id": scope}
    return Measurement(scope, None, None, extra)


def _credit_type(alert: AlertRecord) -> str:
    return alert.credit_type_id or USD_CENTS_CREDIT_TYPE_ID


def period_spend(view: CustomerView, credit_type_id: str) -> Decimal:
    """Usage spend of the billing period in force, before drawdown, in this credit type: what a
    spend_threshold_reached alert without group values measures (and spend limits show)."""
    return sum((inv.spend_by_credit_type.get(credit_type_id, ZERO) for inv in view.current_invoices), ZERO)


def _spend(alert: AlertRecord, view: CustomerView) -> Iterator[Measurement]:
    period_start = view.current_period.start_us
    credit_type = _credit_type(alert)
    if not alert.group_values:
        yield Measurement("", period_spend(view, credit_type), period_start)
        return
    fixed = {g["key"]: g["value"] for g in alert.group_values if g.get("value") is not None}
    open_keys = [g["key"] for g in alert.group_values if g.get("value") is None]
    by_scope: dict[str, tuple[dict[str, str], Decimal]] = {}
    for line in _usage_lines(view, credit_type):
        groups = {
            k: v
            for k, v in (*line.pricing_group_values.items(), *line.presentation_group_values.items())
            if v
        }
        if any(groups.get(k) != v for k, v in fixed.items()) or any(groups.get(k) is None for k in open_keys):
            continue
        values = {k: groups[k] for k in open_keys}
        scope = group_scope(values) if open_keys else ""
        spend = by_scope[scope][1] if scope in by_scope else ZERO
        by_scope[scope] = (values, spend + line.total)
    if not open_keys:
        by_scope.setdefault("", ({}, ZERO))
    for scope, (values, spend) in sorted(by_scope.items()):
        yield Measurement(scope, spend, period_start, {"group_values": _group_values({**fixed, **values})})


def forecast_window_hours(alert: AlertRecord) -> int:
    return alert.forecast_window_hours or DEFAULT_FORECAST_WINDOW_HOURS


def _forecast(alert: AlertRecord, view: CustomerView) -> Measurement:
    """Spend projected to the period's end at the pace of the alert's window; the notification
    also says the spend now, the window, and when at this pace the threshold is reached (null: not
    within the period)."""
    hours = forecast_window_hours(alert)
    pace = view.spend_pace(_credit_type(alert), hours)
    reached_at = threshold_reached_at(alert.threshold, pace)
    extra = {
        "current_spend": pace.spend_now,
        "forecast_window_hours": hours,
        "threshold_reached_at": format_rfc3339(reached_at) if reached_at is not None else None,
        "period_ends_at": format_rfc3339(pace.period_end_us),
    }
    return Measurement(
        "", projected_spend(pace), view.current_period.start_us, extra, per_spend=projection_per_spend(pace)
    )


def _group_values(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in sorted(values.items())]


def _usage_lines(view: CustomerView, credit_type: str) -> Iterator[UsageLine]:
    """The current drafts' usage lines in this credit type: spend, structured (never parsed
    back from rendered line items)."""
    for inv in view.current_invoices:
        assert inv.computation is not None  # current invoices are derived drafts
        for line in inv.computation.usage_lines:
            if line.credit_type_id == credit_type and line.subscription is None:
                yield line


def _invoice_total(alert: AlertRecord, view: CustomerView) -> Measurement:
    credit_type = _credit_type(alert)
    wanted = {t.upper() for t in alert.invoice_types_filter} if alert.invoice_types_filter else None

    def matching(found: list[InvoiceRecord]) -> list[InvoiceRecord]:
        return [i for i in found if i.credit_type_id == credit_type and (wanted is None or i.type in wanted)]

    current = matching(view.current_invoices)
    period_start = view.current_period.start_us
    if alert.alert_type is AlertType.MONTHLY_INVOICE_TOTAL_SPEND_THRESHOLD_REACHED:
        return Measurement("", sum((inv.total for inv in current), ZERO), period_start)
    # invoice_total_reached: any active invoice reaching the threshold, SCHEDULED and TRUEUP drafts included.
    top = max([*current, *matching(view.scheduled_drafts)], key=lambda inv: inv.total, default=None)
    if top is None:
        return Measurement("", ZERO, period_start)
    return Measurement("", top.total, period_start, {"invoice_id": top.id})


def _usage(alert: AlertRecord, view: CustomerView) -> Measurement:
    metric_id = alert.billable_metric_id
    assert metric_id is not None
    aggregation = view.aggregation(metric_id)
    period = view.current_period
    periods = view.catalog.periods if view.catalog is not None else None
    grouped = usage_by_group(
        view.conn, view.customer_id, {metric_id: aggregation}, period.start_us, period.end_us, periods
    )
    total = merged(aggregate for _group, aggregate in grouped.get(metric_id, ()))
    value = total.value(aggregation)
    return Measurement(
        "", value if value is not None else ZERO, period.start_us, {"billable_metric_id": metric_id}
    )


def _pool_commits(alert: AlertRecord, kind: AlertKind, view: CustomerView) -> list[CommitBalance]:
    credit_type = _credit_type(alert)
    return [
        entry
        for entry in view.balances.values()
        if entry.commit.credit_type_id == credit_type
        and _in_pool(entry.commit, kind.pool, kind.per_seat)
        and _custom_fields_match(alert, entry.commit, view)
    ]


def _in_pool(commit: CommitTerms, pool: Pool | None, per_seat: bool = False) -> bool:
    # A seat's own balance counts only for the seat alert; the others leave it out, as Metronome's do.
    if commit.seat_scoped != per_seat:
        return False
    if pool is Pool.CREDITS:
        return commit.kind == CREDIT
    if pool is Pool.COMMITS:
        return commit.kind != CREDIT
    return True


def _custom_fields_match(alert: AlertRecord, commit: CommitTerms, view: CustomerView) -> bool:
    for f in alert.custom_field_filters or ():
        if f["entity"] == "Contract":
            fields = view.contract_custom_fields.get(commit.contract_id or "", {})
        elif (f["entity"] == "ContractCredit" and commit.kind != CREDIT) or (
            f["entity"] == "Commit" and commit.kind == CREDIT
        ):
            return False
        else:
            fields = view.commit_custom_fields.get(commit.id, {})
        if fields.get(f["key"]) != f["value"]:
            return False
    return True


def _balance(alert: AlertRecord, kind: AlertKind, view: CustomerView) -> Measurement:
    pool = _pool_commits(alert, kind, view)
    remaining = sum((entry.balance for entry in pool), ZERO)
    if kind.measure is Measure.BALANCE:
        return Measurement("", remaining)
    granted = sum(
        (s.amount for entry in pool for s in entry.commit.segments if s.accessible_at(view.now_us)), ZERO
    )
    # Percentages consider only balances accessible now; none at all means nothing to measure.
    if granted <= 0:
        return Measurement("", None)
    return Measurement("", remaining * HUNDRED / granted, per_spend=HUNDRED / granted)


def _days_in_plan(view: CustomerView) -> Measurement:
    ends = [
        c.ending_before_us for c in view.contracts if c.ending_before_us and c.ending_before_us > view.now_us
    ]
    if not ends:
        return Measurement("", None)
    return Measurement("", Decimal(min(ends) - view.now_us) / US_PER_DAY)


def _segment_days(alert: AlertRecord, kind: AlertKind, view: CustomerView) -> Iterator[Measurement]:
    for entry in _pool_commits(alert, kind, view):
        for segment in entry.commit.segments:
            if segment.accessible_at(view.now_us):
                days = Decimal(segment.ending_before_us - view.now_us) / US_PER_DAY
                yield Measurement(
                    segment.id, days, None, {"commit_id": entry.commit.id, "segment_id": segment.id}
                )


def _seat_balances(alert: AlertRecord, kind: AlertKind, view: CustomerView) -> Iterator[Measurement]:
    """Each seat's own balance (what its segments accessible now have left), one measurement per
    seat of the alert's `seat_group_key`, or only `seat_group_value`'s. A seat without a balance
    accessible now (not assigned, or nothing allocated to it yet) has nothing to measure."""
    wanted = alert.seat_filter or {}
    key, only = wanted.get("seat_group_key"), wanted.get("seat_group_value")
    drawn = view.drawn_by_segment
    remaining: dict[str, Decimal] = {}
    for entry in _pool_commits(alert, kind, view):
        for segment in entry.commit.segments:
            seat = segment.seat
            if seat is None or seat.seat_id is None or seat.group_key != key:
                continue
            if segment.accessible_at(view.now_us) and (only is None or seat.seat_id == only):
                left = max(segment.amount - drawn.get(segment.id, ZERO), ZERO)
                remaining[seat.seat_id] = remaining.get(seat.seat_id, ZERO) + left
    for seat_id, balance in sorted(remaining.items()):
        values = {key or "": seat_id}
        yield Measurement(group_scope(values), balance, None, _seat_extra(alert, values))


def _seat_extra(alert: AlertRecord, values: dict[str, str] | None) -> dict[str, Any]:
    """What a seat balance notification says of its seat (meterline names it: Metronome does not
    document the properties of this notification)."""
    key = (alert.seat_filter or {}).get("seat_group_key")
    value = None if values is None else values.get(key or "")
    return {"seat_group_key": key, "seat_group_value": value}
