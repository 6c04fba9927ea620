"""The spend_limits dashboard (meterline's own): the customer's spend in the current billing
period against its soft and hard limits in USD cents, as `/v1/spend-limits/get` shows them, with
the percent used and the time to each limit at the current pace (`domain.spend_pace`), and the
most the customer may set a limit to (the operator's maximum, or the URL's lower one)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection

from meterline.api.dashboard_capability import Capability
from meterline.domain.spend_pace import Outlook, Pace, TimeToLimit, in_words, time_to_limit
from meterline.services import spend_limits
from meterline.services.spend_limits import HARD, SOFT, SpendLimitView
from meterline.settings import Settings

LABELS = {SOFT: "Soft limit", HARD: "Hard limit"}
EXPLAINED = {
    SOFT: "You are notified when your spend reaches it.",
    HARD: "Access stops when your spend reaches it.",
}
STATUS_TEXT = {
    spend_limits.OK: "Within your limits",
    spend_limits.SOFT_REACHED: "Soft limit reached",
    spend_limits.HARD_REACHED: "Hard limit reached",
}


@dataclass(frozen=True, slots=True)
class LimitRow:
    kind: str
    label: str
    explained: str
    limit: Decimal | None
    percent_used: Decimal | None  # of the limit, rounded down to a whole percent; None: no limit
    time_to_limit: str


@dataclass(frozen=True, slots=True)
class LimitsPanel:
    view: SpendLimitView
    status_text: str
    rows: list[LimitRow]
    per_hour: Decimal  # the current pace, USD cents an hour
    maximum: Decimal


def maximum_of(settings: Settings, capability: Capability) -> Decimal:
    """The operator's maximum, lowered by the URL's `max_spend_limit` (checked when it was issued)."""
    given = capability.options.get("max_spend_limit")
    return min(settings.embed_max_spend_limit, Decimal(given)) if given else settings.embed_max_spend_limit


def limits_panel(conn: Connection, settings: Settings, capability: Capability, now_us: int) -> LimitsPanel:
    view, pace = spend_limits.limits_with_pace(
        conn, capability.customer_id, now_us, settings.open_horizon_us()
    )
    rows = [
        _row(SOFT, view.soft_limit, view.current_spend, pace),
        _row(HARD, view.hard_limit, view.current_spend, pace),
    ]
    return LimitsPanel(view, STATUS_TEXT[view.status], rows, pace.per_hour, maximum_of(settings, capability))


def _row(kind: str, limit: Decimal | None, spend: Decimal, pace: Pace) -> LimitRow:
    if limit is None:
        return LimitRow(kind, LABELS[kind], EXPLAINED[kind], None, None, "No limit")
    percent = (spend * 100 / limit).to_integral_value(rounding="ROUND_FLOOR") if limit > 0 else Decimal(100)
    return LimitRow(
        kind, LABELS[kind], EXPLAINED[kind], limit, percent, outlook_text(time_to_limit(limit, pace))
    )


def outlook_text(found: TimeToLimit) -> str:
    if found.outlook is Outlook.REACHED:
        return "Reached"
    if found.outlook is Outlook.AT:
        assert found.after_us is not None
        return f"In {in_words(found.after_us)}"
    if found.outlook is Outlook.NOT_THIS_PERIOD:
        return "Not this billing period at this pace"
    return "Not at this pace"
