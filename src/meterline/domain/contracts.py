"""Contracts, commits and credits as the billing engine sees them (the terms, not the API shape)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from meterline.domain.billing_periods import AnchorDay, Frequency, Schedule, schedule_for
from meterline.domain.pricing import Override, PriceSpec
from meterline.domain.products import ProductState
from meterline.domain.recurring import RecurringSpec
from meterline.domain.scheduled_items import ScheduledItem
from meterline.domain.seats import SeatScope
from meterline.domain.subscriptions import SubscriptionTerms
from meterline.domain.threshold_billing import ThresholdConfig

PREPAID = "PREPAID"
POSTPAID = "POSTPAID"
CREDIT = "CREDIT"


@dataclass(frozen=True, slots=True)
class AccessSegment:
    """When part of a commit or credit may be drawn down, and how much: [starting_at, ending_before)."""

    id: str
    amount: Decimal
    starting_at_us: int
    ending_before_us: int
    seat: SeatScope | None = None  # set: one seat's own balance (INDIVIDUAL allocation)

    def accessible_at(self, at_us: int) -> bool:
        return self.starting_at_us <= at_us < self.ending_before_us

    def overlaps(self, start_us: int, end_us: int) -> bool:
        return self.starting_at_us < end_us and start_us < self.ending_before_us


@dataclass(frozen=True, slots=True)
class RolledOverFrom:
    """What a rollover commit took: the old commit, its contract, and the amount per old segment."""

    commit_id: str
    contract_id: str
    segments: Mapping[str, Decimal]

    @property
    def amount(self) -> Decimal:
        return sum(self.segments.values(), Decimal(0))


@dataclass(frozen=True, slots=True)
class CommitTerms:
    id: str
    customer_id: str
    contract_id: str | None  # None: a customer-level commit or credit, for every contract
    kind: str  # PREPAID, POSTPAID or CREDIT
    product_id: str
    credit_type_id: str
    segments: tuple[AccessSegment, ...]
    priority: Decimal | None = None
    is_paid: bool = False  # cost basis above 0: a prepaid commit that is invoiced
    applicable_product_ids: frozenset[str] = frozenset()
    applicable_product_tags: frozenset[str] = frozenset()
    specifiers: tuple[Mapping[str, Any], ...] = ()
    name: str | None = None
    archived_at_us: int | None = None
    invoice_items: tuple[ScheduledItem, ...] = ()  # what its invoice schedule bills (a paid commit's)
    recurring_id: str | None = None  # the recurring commit or credit that created it for a period
    rollover_fraction: Decimal | None = None  # what share of it rolls over at a transition
    rolled_over_from: RolledOverFrom | None = None  # set: a rollover commit, drawn down first

    def applies_to_contract(self, contract_id: str) -> bool:
        return self.contract_id is None or self.contract_id == contract_id

    @property
    def seat_scoped(self) -> bool:
        """Allocated per seat (INDIVIDUAL): balance alerts of the customer or contract leave it
        out, as Metronome's do; `low_remaining_seat_balance_reached` measures it."""
        return any(s.seat is not None for s in self.segments)


@dataclass(frozen=True, slots=True)
class OverrideTerms:
    """A contract override: OVERWRITE (a new rate) or MULTIPLIER, for a product or tagged products."""

    id: str
    starting_at_us: int
    ending_before_us: int | None
    product_id: str | None = None
    product_tags: frozenset[str] = frozenset()
    pricing_group_values: Mapping[str, str] | None = None
    billing_frequency: str | None = None  # set: only the subscription rates of this frequency
    multiplier: Decimal | None = None
    overwrite: PriceSpec | None = None
    overwrite_credit_type_id: str | None = None
    priority: Decimal | None = None
    entitled: bool | None = None  # None: the rate's own entitlement stands

    def in_force(self, at_us: int) -> bool:
        return self.starting_at_us <= at_us and (
            self.ending_before_us is None or at_us < self.ending_before_us
        )

    def applies_to(self, product: ProductState, billing_frequency: str | None = None) -> bool:
        """Whether it overrides the product's rate (of `billing_frequency`: a subscription's)."""
        if self.billing_frequency is not None and self.billing_frequency != billing_frequency:
            return False
        if self.product_id is not None and self.product_id != product.id:
            return False
        return not self.product_tags or bool(self.product_tags & set(product.tags))

    def as_override(self) -> Override:
        return Override(
            overwrite=self.overwrite,
            multiplier=self.multiplier,
            priority=self.priority,
            pricing_group_values=self.pricing_group_values,
            overwrite_credit_type_id=self.overwrite_credit_type_id,
            entitled=self.entitled,
        )


@dataclass(frozen=True, slots=True)
class ContractTerms:
    id: str
    customer_id: str
    rate_card_id: str
    starting_at_us: int
    ending_before_us: int | None
    frequency: Frequency = Frequency.MONTHLY
    anchor_day: AnchorDay = AnchorDay.FIRST_OF_MONTH
    billing_anchor_us: int | None = None
    explicit_override_priority: bool = False
    overrides: tuple[OverrideTerms, ...] = field(default_factory=tuple)
    subscriptions: tuple[SubscriptionTerms, ...] = ()
    archived_at_us: int | None = None
    scheduled_items: tuple[ScheduledItem, ...] = ()  # the items of its scheduled charges
    charges_on_usage_invoices: bool = False  # scheduled_charges_on_usage_invoices: "ALL"
    thresholds: tuple[ThresholdConfig, ...] = ()  # threshold billing: spend, prepaid balance
    recurring: tuple[RecurringSpec, ...] = ()  # recurring commits and credits
    transition_from_contract_id: str | None = None  # the contract it took over from, at its start
    # future_invoice_behavior.trueup REMOVE: the true-ups of that contract dated from this one's
    # start on are not billed.
    removes_trueups: bool = False

    def subscription_schedule(self, subscription: SubscriptionTerms) -> Schedule:
        """The subscription's own periods: its billing frequency, laid out like the contract's,
        or from its own billing cycle anchor."""
        if subscription.anchor_us is not None:
            return schedule_for(
                Frequency(subscription.billing_frequency),
                AnchorDay.CUSTOM_DATE,
                self.starting_at_us,
                self.ending_before_us,
                subscription.anchor_us,
            )
        return schedule_for(
            Frequency(subscription.billing_frequency),
            self.anchor_day,
            self.starting_at_us,
            self.ending_before_us,
            self.billing_anchor_us,
        )

    def schedule(self) -> Schedule:
        return schedule_for(
            self.frequency,
            self.anchor_day,
            self.starting_at_us,
            self.ending_before_us,
            self.billing_anchor_us,
        )
