"""Threshold alerts: the types, what each measures, which way it fires, and the transitions.

Spend, usage and invoice types go in_alarm when the measure is at or above the threshold;
balance, percentage and days types when it is at or below. State changes only on a transition,
so a measure hovering at the threshold never produces a stream of notifications. Percentages
are in percent (0-100) of what was granted; days are whole or fractional days remaining.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, localcontext
from enum import StrEnum


class AlertType(StrEnum):
    SPEND_THRESHOLD_REACHED = "spend_threshold_reached"
    INVOICE_TOTAL_REACHED = "invoice_total_reached"
    MONTHLY_INVOICE_TOTAL_SPEND_THRESHOLD_REACHED = "monthly_invoice_total_spend_threshold_reached"
    USAGE_THRESHOLD_REACHED = "usage_threshold_reached"
    LOW_CREDIT_BALANCE_REACHED = "low_credit_balance_reached"
    LOW_REMAINING_CREDIT_PERCENTAGE_REACHED = "low_remaining_credit_percentage_reached"
    LOW_REMAINING_COMMIT_BALANCE_REACHED = "low_remaining_commit_balance_reached"
    LOW_REMAINING_COMMIT_PERCENTAGE_REACHED = "low_remaining_commit_percentage_reached"
    LOW_REMAINING_CONTRACT_CREDIT_BALANCE_REACHED = "low_remaining_contract_credit_balance_reached"
    LOW_REMAINING_CONTRACT_CREDIT_PERCENTAGE_REACHED = "low_remaining_contract_credit_percentage_reached"
    LOW_REMAINING_CONTRACT_CREDIT_AND_COMMIT_BALANCE_REACHED = (
        "low_remaining_contract_credit_and_commit_balance_reached"
    )
    LOW_REMAINING_CONTRACT_CREDIT_AND_COMMIT_PERCENTAGE_REACHED = (
        "low_remaining_contract_credit_and_commit_percentage_reached"
    )
    LOW_REMAINING_DAYS_IN_PLAN_REACHED = "low_remaining_days_in_plan_reached"
    LOW_REMAINING_DAYS_FOR_COMMIT_SEGMENT_REACHED = "low_remaining_days_for_commit_segment_reached"
    LOW_REMAINING_DAYS_FOR_CONTRACT_CREDIT_SEGMENT_REACHED = (
        "low_remaining_days_for_contract_credit_segment_reached"
    )
    LOW_REMAINING_SEAT_BALANCE_REACHED = "low_remaining_seat_balance_reached"
    # meterline's extension: spend projected to the period's end at the recent pace.
    SPEND_FORECAST_REACHED = "spend_forecast_reached"


class Measure(StrEnum):
    """What an alert type compares with its threshold (and the webhook property carrying it)."""

    SPEND = "current_spend"
    INVOICE_TOTAL = "invoice_total"
    USAGE = "current_usage"
    BALANCE = "remaining_balance"
    PERCENTAGE = "remaining_percentage"
    DAYS = "remaining_days"
    PROJECTED_SPEND = "projected_spend"  # meterline's extension (spend_forecast_reached)


class Pool(StrEnum):
    """Which balances a balance, percentage or days alert looks at."""

    CREDITS = "credits"
    COMMITS = "commits"
    CREDITS_AND_COMMITS = "credits_and_commits"


@dataclass(frozen=True, slots=True)
class AlertKind:
    measure: Measure
    fires_at_or_above: bool
    period_scoped: bool = False  # the measure restarts at zero when a new billing period begins
    pool: Pool | None = None
    uses_metric: bool = False
    time_driven: bool = False  # the measure moves with the clock (alone, but for forecasts)
    per_segment: bool = False  # one state (and notification) per commit or credit segment
    per_seat: bool = False  # one state (and notification) per seat: its own balance (INDIVIDUAL)
    webhook_type: str | None = None  # when the webhook name differs from alerts.<alert_type>


_T = AlertType
KINDS: dict[AlertType, AlertKind] = {
    _T.SPEND_THRESHOLD_REACHED: AlertKind(Measure.SPEND, True, period_scoped=True),
    _T.INVOICE_TOTAL_REACHED: AlertKind(Measure.INVOICE_TOTAL, True, period_scoped=True),
    _T.MONTHLY_INVOICE_TOTAL_SPEND_THRESHOLD_REACHED: AlertKind(
        Measure.INVOICE_TOTAL, True, period_scoped=True
    ),
    _T.USAGE_THRESHOLD_REACHED: AlertKind(Measure.USAGE, True, period_scoped=True, uses_metric=True),
    _T.LOW_CREDIT_BALANCE_REACHED: AlertKind(
        Measure.BALANCE, False, pool=Pool.CREDITS, webhook_type="low_remaining_credit_balance_reached"
    ),
    _T.LOW_REMAINING_CREDIT_PERCENTAGE_REACHED: AlertKind(Measure.PERCENTAGE, False, pool=Pool.CREDITS),
    _T.LOW_REMAINING_COMMIT_BALANCE_REACHED: AlertKind(Measure.BALANCE, False, pool=Pool.COMMITS),
    _T.LOW_REMAINING_COMMIT_PERCENTAGE_REACHED: AlertKind(Measure.PERCENTAGE, False, pool=Pool.COMMITS),
    _T.LOW_REMAINING_CONTRACT_CREDIT_BALANCE_REACHED: AlertKind(Measure.BALANCE, False, pool=Pool.CREDITS),
    _T.LOW_REMAINING_CONTRACT_CREDIT_PERCENTAGE_REACHED: AlertKind(
        Measure.PERCENTAGE, False, pool=Pool.CREDITS
    ),
    _T.LOW_REMAINING_CONTRACT_CREDIT_AND_COMMIT_BALANCE_REACHED: AlertKind(
        Measure.BALANCE, False, pool=Pool.CREDITS_AND_COMMITS
    ),
    _T.LOW_REMAINING_CONTRACT_CREDIT_AND_COMMIT_PERCENTAGE_REACHED: AlertKind(
        Measure.PERCENTAGE, False, pool=Pool.CREDITS_AND_COMMITS
    ),
    _T.LOW_REMAINING_DAYS_IN_PLAN_REACHED: AlertKind(Measure.DAYS, False, time_driven=True),
    _T.LOW_REMAINING_DAYS_FOR_COMMIT_SEGMENT_REACHED: AlertKind(
        Measure.DAYS, False, pool=Pool.COMMITS, time_driven=True, per_segment=True
    ),
    _T.LOW_REMAINING_DAYS_FOR_CONTRACT_CREDIT_SEGMENT_REACHED: AlertKind(
        Measure.DAYS, False, pool=Pool.CREDITS, time_driven=True, per_segment=True
    ),
    _T.SPEND_FORECAST_REACHED: AlertKind(Measure.PROJECTED_SPEND, True, period_scoped=True, time_driven=True),
    # A seat's own balance: what its commits and credits allocated per seat have left for it.
    _T.LOW_REMAINING_SEAT_BALANCE_REACHED: AlertKind(
        Measure.BALANCE, False, pool=Pool.CREDITS_AND_COMMITS, per_seat=True
    ),
}
# A forecast's pace window when its alert does not choose one, and the longest it may choose.
DEFAULT_FORECAST_WINDOW_HOURS = 24
MAX_FORECAST_WINDOW_HOURS = 31 * 24
OK = "ok"
IN_ALARM = "in_alarm"
EVALUATING = "evaluating"


def kind_of(alert_type: AlertType) -> AlertKind:
    return KINDS[alert_type]


def blocking_refusal(alert_type: AlertType) -> str | None:
    """Why an alert of this type may not block access (meterline's extension), or None if it may.

    Blocking means "no access while in alarm". Days-remaining and forecast alerts warn ahead of
    an end or a limit that has not come: denying access before it would be a surprise, so they
    cannot block; nor can a seat balance alert, in alarm for one seat of a customer whose access
    is decided as a whole.
    """
    if KINDS[alert_type].time_driven:
        return f"{alert_type.value} alerts warn ahead of time and cannot block access"
    if KINDS[alert_type].per_seat:
        # Access is decided per customer: one seat's balance running out must not block the others.
        return f"{alert_type.value} alerts concern one seat each, and access is decided per customer"
    return None


PERCENT_PLACES = Decimal("0.01")


def spend_progress(
    alert_type: AlertType, threshold: Decimal, measure: Decimal | None
) -> dict[str, Decimal | None]:
    """What a spend notification carries beside Metronome's properties (meterline's extension):
    `percent_used`, spend as a percentage of the threshold, truncated to hundredths so that it
    shows 100 only once the threshold is reached (null for a threshold of 0), and `remaining`,
    what is left before the threshold (0 once it is reached). Other types carry nothing more."""
    if KINDS[alert_type].measure is not Measure.SPEND:
        return {}
    spend = measure if measure is not None else Decimal(0)
    with localcontext() as exact:
        exact.prec = 200  # exact: thresholds and spend have at most 40 digits each side of the point
        percent = None if threshold == 0 else (spend * 100 / threshold).quantize(PERCENT_PLACES, ROUND_DOWN)
        remaining = max(threshold - spend, Decimal(0))
    return {"percent_used": percent, "remaining": remaining}


def breached(kind: AlertKind, measure: Decimal | None, threshold: Decimal) -> bool:
    """Whether the measure is past the threshold. No measure (nothing to measure) never fires."""
    if measure is None:
        return False
    return measure >= threshold if kind.fires_at_or_above else measure <= threshold


MAX_SCOPE_CHARS = 64  # the state's scope column


def group_scope(values: Mapping[str, str]) -> str:
    """The state scope of a spend alert's open group keys taking these values.

    Group values are user data of any length and characters: the scope is their JSON when it fits
    (so it names them), else a digest of it (which never starts with "["); two different sets of
    values never share a state.
    """
    text = json.dumps(sorted(values.items()), separators=(",", ":"))
    return text if len(text) <= MAX_SCOPE_CHARS else hashlib.sha256(text.encode()).hexdigest()


def seat_scope(seat_group_key: str, seat_group_value: str) -> str:
    """The state scope of a seat balance alert for one seat."""
    return group_scope({seat_group_key: seat_group_value})


def scope_group_values(scope: str) -> dict[str, str] | None:
    """The values a group scope names (None for a digest)."""
    return dict(json.loads(scope)) if scope.startswith("[") else None


def webhook_type(alert_type: AlertType, resolved: bool = False) -> str:
    name = KINDS[alert_type].webhook_type or alert_type.value
    return f"alerts.{name}_resolved" if resolved else f"alerts.{name}"


@dataclass(frozen=True, slots=True)
class Transition:
    new_status: str
    notify: str | None  # None, "alarm" or "resolved"


def transition(previous: str | None, now_breached: bool, *, notify_first: bool = True) -> Transition | None:
    """The state change for a fresh measurement, or None when nothing changes.

    From `evaluating` (never measured) the first measurement sets the state; it notifies on
    in_alarm only when `notify_first` (evaluate_on_create). After that, only ok <-> in_alarm
    transitions change anything, and each notifies exactly once.
    """
    target = IN_ALARM if now_breached else OK
    if previous == target:
        return None
    if previous in (None, EVALUATING):
        return Transition(target, "alarm" if target == IN_ALARM and notify_first else None)
    return Transition(target, "alarm" if target == IN_ALARM else "resolved")
