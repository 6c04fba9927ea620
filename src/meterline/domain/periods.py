"""Spans of time that usage is summed over, and the two that are calendar months.

Two different things are months here, and the names keep them apart:
- `calendar_month(us)`: the UTC calendar month holding `us`. The evaluator keys its stored usage
  aggregates by it (the `usage_monthly` table), whatever anyone's billing period.
- `default_billing_period(us)`: the billing period of a customer with no contract of its own,
  which is Metronome's default (MONTHLY, FIRST_OF_MONTH): the same calendar month.
A customer's billing periods under a contract come from its usage statement schedule
(`domain/billing_periods.py`) and need not be months; pricing reads an exact calendar month from
the monthly aggregates and any other period from the hour buckets (`store/period_usage.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from meterline.domain.timeutil import month_bounds


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open span of time, [start_us, end_us)."""

    start_us: int
    end_us: int

    def contains(self, us: int) -> bool:
        return self.start_us <= us < self.end_us


def calendar_month(us: int) -> Period:
    start, end = month_bounds(us)
    return Period(start, end)


def default_billing_period(us: int) -> Period:
    """The billing period holding `us` for a customer without a contract's own schedule."""
    return calendar_month(us)
