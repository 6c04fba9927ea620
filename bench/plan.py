"""The bench's pricing and alerts, chosen from the events each customer is planned to receive.

Every customer has the same contract: a COUNT metric priced by a TIERED rate (2 cents per event
for the first `tier_events`, then 1 cent), a prepaid commit worth the spend of
`events_per_customer` events, and three alerts:

- SOFT (`spend_threshold_reached`) at the spend of 30% of the planned events;
- HARD (`spend_threshold_reached`) at the spend of 75% of them (past the first tier);
- LOW (`low_remaining_commit_balance_reached`) when what is left of the commit falls to the
  spend of the last 40%, i.e. once 60% of the planned events are spent.

Pricing is deterministic, so the number of acknowledged events at which each alert must fire is
known in advance (`events_to_fire`): that is what alert latency is measured from. Money is Decimal.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from enum import Enum

FIRST_TIER_PRICE = Decimal(2)
LATER_PRICE = Decimal(1)
EVENT_TYPE = "api_call"
ALIAS_PREFIX = "bench-customer-"
SPEND_ALERT = "spend_threshold_reached"
LOW_BALANCE_ALERT = "low_remaining_commit_balance_reached"


class AlertKind(Enum):
    SOFT = "soft"
    HARD = "hard"
    LOW = "low"


def alias_for(index: int) -> str:
    """Customer `index`'s ingest alias; customer 0 is the seeding template."""
    return f"{ALIAS_PREFIX}{index}"


def alert_name(kind: AlertKind, alias: str) -> str:
    """Names carry the alias, so a webhook payload says which customer and alert it is about."""
    return f"{kind.value} {alias}"


def parse_alert_name(name: str) -> tuple[AlertKind, str] | None:
    kind, _, alias = name.partition(" ")
    try:
        return AlertKind(kind), alias
    except ValueError:
        return None


@dataclass(frozen=True)
class AlertSpec:
    kind: AlertKind
    alert_type: str
    threshold: Decimal


@dataclass(frozen=True)
class Plan:
    """Pricing and thresholds for customers planned to receive `events_per_customer` events."""

    events_per_customer: int

    def __post_init__(self) -> None:
        if self.events_per_customer < 10:
            raise ValueError("events_per_customer: at least 10, so that the three thresholds differ")

    @property
    def tier_events(self) -> int:
        return self.events_per_customer // 2

    def spend(self, events: int) -> Decimal:
        """Usage charges, in USD cents, of `events` events in the billing period."""
        first = min(events, self.tier_events)
        return FIRST_TIER_PRICE * first + LATER_PRICE * (events - first)

    @property
    def commit_amount(self) -> Decimal:
        return self.spend(self.events_per_customer)

    def _events(self, fraction: str) -> int:
        return int((Decimal(fraction) * self.events_per_customer).to_integral_value(ROUND_CEILING))

    @property
    def alerts(self) -> tuple[AlertSpec, ...]:
        return (
            AlertSpec(AlertKind.SOFT, SPEND_ALERT, self.spend(self._events("0.3"))),
            AlertSpec(AlertKind.HARD, SPEND_ALERT, self.spend(self._events("0.75"))),
            AlertSpec(AlertKind.LOW, LOW_BALANCE_ALERT, self.commit_amount - self.spend(self._events("0.6"))),
        )

    def alert(self, kind: AlertKind) -> AlertSpec:
        return next(a for a in self.alerts if a.kind is kind)

    def fires(self, spec: AlertSpec, events: int) -> bool:
        """Whether `events` counted events put the alert's measure at its threshold or past it."""
        spend = self.spend(events)
        if spec.alert_type == SPEND_ALERT:
            return spend >= spec.threshold
        remaining = self.commit_amount - min(spend, self.commit_amount)
        return remaining <= spec.threshold

    def events_to_fire(self, spec: AlertSpec) -> int:
        """The fewest counted events at which the alert fires (measures only grow with events)."""
        events = 0
        while not self.fires(spec, events):
            events += 1
        return events
