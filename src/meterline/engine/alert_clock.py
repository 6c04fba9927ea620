"""When a customer's alert measures next move with the clock alone.

Spend, usage and invoice measures restart when a billing period ends; balances and percentages
change when a commit or credit segment starts or expires, and when a new period's subscription
charges are drawn from them; days remaining reach a threshold at a known instant; a spend
forecast falls, with no usage, to its threshold at an instant computed from its pace, and its
pace window moves on at every hour. Each of these instants is known in advance, so the evaluator re-measures a
customer exactly then, instead of sweeping every customer periodically: time costs nothing for
a customer until its next instant, whatever the number of customers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from meterline.domain.alerts import AlertKind, Measure, kind_of
from meterline.domain.ids import USD_CENTS_CREDIT_TYPE_ID
from meterline.domain.spend_pace import falls_below_at, next_window_move
from meterline.domain.timeutil import US_PER_DAY
from meterline.engine.alert_measures import CustomerView, forecast_window_hours
from meterline.store.alerts import AlertRecord

_SEGMENT_MEASURES = (Measure.BALANCE, Measure.PERCENTAGE)


def next_instant(alerts: Sequence[AlertRecord], view: CustomerView) -> int | None:
    """The earliest instant after `view.now_us` at which any of these measures may change with no
    event; None when nothing they measure depends on the clock."""
    later = [t for t in _instants(alerts, view) if t is not None and t > view.now_us]
    return min(later, default=None)


def _instants(alerts: Sequence[AlertRecord], view: CustomerView) -> Iterator[int | None]:
    kinds = [(alert, kind_of(alert.alert_type)) for alert in alerts]
    if any(kind.period_scoped for _a, kind in kinds):
        yield view.current_period.end_us
    if any(kind.period_scoped or _in_plan(kind) for _a, kind in kinds):
        for contract in view.contracts:  # which contract's period is in force, and days in plan
            yield contract.starting_at_us
            yield contract.ending_before_us
    if any(kind.measure in _SEGMENT_MEASURES or kind.per_segment for _a, kind in kinds):
        yield from _subscription_instants(view)
        for entry in view.balances.values():
            for segment in entry.commit.segments:
                yield segment.starting_at_us
                yield segment.ending_before_us
    for alert, kind in kinds:
        if kind.measure is Measure.DAYS:
            # Days remaining fall to the threshold (fires at or below) this long before the end.
            lead_us = int(alert.threshold * US_PER_DAY)
            yield from (end - lead_us for end in _ends(kind, view))
        elif kind.measure is Measure.PROJECTED_SPEND:
            yield from _forecast_instants(alert, view)


def _forecast_instants(alert: AlertRecord, view: CustomerView) -> Iterator[int | None]:
    """When the projection next moves with no usage: its window moving on, or its falling below
    the threshold (from above: in alarm, it resolves then)."""
    hours = forecast_window_hours(alert)
    yield next_window_move(view.now_us, view.current_period.start_us, hours)
    pace = view.spend_pace(alert.credit_type_id or USD_CENTS_CREDIT_TYPE_ID, hours)
    yield falls_below_at(alert.threshold, pace)


def _subscription_instants(view: CustomerView) -> Iterator[int | None]:
    """When subscription charges next appear on a draft (and may draw down a balance): the next
    billing period's draft carries its charges for the whole period from its first moment."""
    if any(c.subscriptions for c in view.contracts):
        yield view.current_period.end_us


def _in_plan(kind: AlertKind) -> bool:
    return kind.measure is Measure.DAYS and not kind.per_segment


def _ends(kind: AlertKind, view: CustomerView) -> Iterator[int]:
    if not kind.per_segment:
        yield from (c.ending_before_us for c in view.contracts if c.ending_before_us is not None)
        return
    for entry in view.balances.values():
        yield from (s.ending_before_us for s in entry.commit.segments)
