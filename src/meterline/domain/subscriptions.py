"""Subscriptions: a recurring charge for a quantity of a SUBSCRIPTION product, and what each
usage invoice of its contract bills for it.

A subscription bills its rate's price per unit and per period of its own billing frequency
(its periods laid out like the contract's: same anchor, clipped to the contract). Its quantity changes over
time: `initial_quantity` from its start, then quantity updates, each from its `starting_at` on,
applied in time order (updates at the same instant in the order they were made), each setting the
quantity (`quantity`) or moving it (`quantity_delta`).

Its quantity is managed directly (QUANTITY_ONLY), or is its seats (SEAT_BASED): seat ids assigned
and unassigned seats, each changed from an instant on (`Seats.after`).

What one of its periods [start, end) owes, over the part of it the subscription covers (`window`):
- ARREARS: each stretch of constant quantity is billed quantity x price x (its length / the
  period's full length) when prorated; not prorated, the period is billed in full at the highest
  quantity it had.
- ADVANCE: the quantity at the window's start is billed for the window (prorated: window length /
  the period's full length; not prorated: in full), set at that moment. A later increase above the
  highest quantity billed so far is billed for the rest of the window (prorated, or in full),
  collected at the period's end (BILL_ON_NEXT_COLLECTION_DATE), or at once, on an invoice of its
  own dated at the increase (BILL_IMMEDIATELY: `immediate_charges`). Decreases take effect with
  the next period: nothing paid in advance is given back.

Its periods are laid out from its own billing cycle anchor when it has one. Its charges go on the
contract's usage invoices (ON_USAGE_INVOICE), or on SCHEDULED invoices of its own, one per date
it bills on (ON_SCHEDULED_INVOICE: `scheduled_invoice_charges`).

Each charge is billed at an instant: an ADVANCE period's first charge at the window's start, every
other charge at the window's last moment. It is on the usage invoice whose period holds that
instant: with periods of the same length as the invoices', the period's own invoice; an ANNUAL
subscription on monthly invoices is billed on the first month's invoice in advance, on the twelfth
in arrears.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

from meterline.domain.billing_periods import Schedule
from meterline.domain.errors import InvalidInput
from meterline.domain.timeutil import format_rfc3339

ADVANCE = "ADVANCE"
ARREARS = "ARREARS"
COLLECTION_SCHEDULES = (ADVANCE, ARREARS)
BILL_ON_NEXT_COLLECTION_DATE = "BILL_ON_NEXT_COLLECTION_DATE"
BILL_IMMEDIATELY = "BILL_IMMEDIATELY"
ON_USAGE_INVOICE = "ON_USAGE_INVOICE"
ON_SCHEDULED_INVOICE = "ON_SCHEDULED_INVOICE"
ZERO = Decimal(0)
# Prorated amounts without a rounding rule are kept to this many decimal places (of a cent, for
# USD): exact enough that no invoice can tell, finite so that totals stay plain decimals.
DEFAULT_PLACES = 12
ROUNDING_METHODS = {"HALF_UP": ROUND_HALF_UP, "FLOOR": ROUND_FLOOR, "CEILING": ROUND_CEILING}


@dataclass(frozen=True, slots=True)
class ProrationRounding:
    decimal_places: int  # negative: to tens, hundreds...
    method: str  # HALF_UP, FLOOR or CEILING

    def apply(self, amount: Fraction) -> Decimal:
        return _quantized(amount, self.decimal_places, ROUNDING_METHODS[self.method])


@dataclass(frozen=True, slots=True)
class QuantityChange:
    """From `starting_at_us` on, the quantity is `quantity`, or moves by `delta`."""

    starting_at_us: int
    quantity: Decimal | None = None
    delta: Decimal | None = None

    def applied_to(self, current: Decimal) -> Decimal:
        return self.quantity if self.quantity is not None else current + (self.delta or ZERO)


@dataclass(frozen=True, slots=True)
class SeatChange:
    """From `starting_at_us` on, seats are assigned or removed by id, or unassigned seats added or
    removed (one of these per change)."""

    starting_at_us: int
    add_seat_ids: tuple[str, ...] = ()
    remove_seat_ids: tuple[str, ...] = ()
    add_unassigned: int = 0
    remove_unassigned: int = 0


@dataclass(frozen=True, slots=True)
class Seats:
    """The seats of a SEAT_BASED subscription from `starting_at_us` on."""

    starting_at_us: int
    assigned: frozenset[str]
    unassigned: int

    @property
    def quantity(self) -> int:
        return len(self.assigned) + self.unassigned

    def after(self, change: SeatChange) -> Seats:
        """A new seat id fills an unassigned seat if there is one, or else adds a seat; removing a
        seat id that is not assigned changes nothing; unassigned seats removed are at most those
        there are."""
        assigned, unassigned = set(self.assigned), self.unassigned
        for seat_id in change.add_seat_ids:
            if seat_id not in assigned:
                assigned.add(seat_id)
                unassigned = max(unassigned - 1, 0)
        assigned.difference_update(change.remove_seat_ids)
        unassigned += change.add_unassigned
        unassigned -= min(change.remove_unassigned, unassigned)
        return Seats(change.starting_at_us, frozenset(assigned), unassigned)


def seat_schedule(changes: Sequence[SeatChange]) -> list[Seats]:
    """The seats at every instant they change, in time order (changes at one instant in the order
    made); the first change is the initial seats."""
    ordered = sorted(enumerate(changes), key=lambda item: (item[1].starting_at_us, item[0]))
    result: list[Seats] = []
    current = Seats(0, frozenset(), 0)
    for _index, change in ordered:
        current = current.after(change)
        if result and result[-1].starting_at_us == change.starting_at_us:
            result[-1] = current
        else:
            result.append(current)
    return result


def as_unassigned_seats(schedule: Sequence[tuple[int, Decimal]]) -> tuple[SeatChange, ...]:
    """A quantity schedule as seat changes that keep it: each quantity that many unassigned seats
    (a subscription switched to SEAT_BASED; seat ids added later take them). A quantity must be a
    whole number of seats."""
    changes: list[SeatChange] = []
    previous = 0
    for at_us, quantity in schedule:
        if quantity != quantity.to_integral_value():
            when = format_rfc3339(at_us)
            raise InvalidInput(f"quantity {quantity} from {when} is not a whole number of seats")
        seats = int(quantity)
        if seats >= previous:
            changes.append(SeatChange(at_us, add_unassigned=seats - previous))
        else:
            changes.append(SeatChange(at_us, remove_unassigned=previous - seats))
        previous = seats
    return tuple(changes)


@dataclass(frozen=True, slots=True)
class SubscriptionTerms:
    id: str
    product_id: str
    billing_frequency: str
    collection_schedule: str  # ADVANCE or ARREARS
    is_prorated: bool
    starting_at_us: int
    ending_before_us: int | None
    changes: tuple[QuantityChange, ...]  # the initial quantity first, then updates as made
    rounding: ProrationRounding | None = None
    name: str | None = None
    custom_fields: Mapping[str, str] = field(default_factory=dict)
    seat_changes: tuple[SeatChange, ...] = ()  # SEAT_BASED: the initial seats first; `changes` empty
    invoice_behavior: str = BILL_ON_NEXT_COLLECTION_DATE  # how an ADVANCE increase is invoiced
    seat_group_key: str | None = None  # SEAT_BASED: the usage property naming a seat
    anchor_us: int | None = None  # its billing cycle's own anchor (None: the contract's)
    invoice_placement: str = ON_USAGE_INVOICE  # or ON_SCHEDULED_INVOICE: invoices of its own

    @property
    def on_own_invoices(self) -> bool:
        return self.invoice_placement == ON_SCHEDULED_INVOICE

    def quantity_schedule(self) -> list[tuple[int, Decimal]]:
        """(from, quantity) at every instant the quantity changes, in time order."""
        if not self.seat_changes:
            return quantity_schedule(self.changes)
        result: list[tuple[int, Decimal]] = []
        for seats in seat_schedule(self.seat_changes):
            if not result or result[-1][1] != seats.quantity:  # a seat replaced is no change of quantity
                result.append((seats.starting_at_us, Decimal(seats.quantity)))
        return result

    def quantity_at(self, at_us: int) -> Decimal:
        current = ZERO
        for starting_at_us, quantity in self.quantity_schedule():
            if starting_at_us > at_us:
                break
            current = quantity
        return current

    def window(self, start_us: int, end_us: int) -> tuple[int, int] | None:
        """The part of [start, end) the subscription covers, or None."""
        low = max(start_us, self.starting_at_us)
        high = end_us if self.ending_before_us is None else min(end_us, self.ending_before_us)
        return (low, high) if low < high else None


@dataclass(frozen=True, slots=True)
class PeriodCharge:
    """What one line of a period's invoice bills for a subscription: `quantity` units over
    [start_us, end_us), as `fraction` of a full period."""

    subscription_id: str
    start_us: int
    end_us: int
    quantity: Decimal
    fraction: Fraction
    billed_at_us: int  # the usage invoice holding this instant bills the charge
    own_invoice: bool = False  # billed at once on an invoice of its own (BILL_IMMEDIATELY)

    @property
    def invoice_date_us(self) -> int:
        """When a SCHEDULED invoice of the subscription's own bills it: a charge billed at its
        window's last moment is dated at the window's end (with the next period's charge in
        advance, if any), one billed at its start then."""
        return self.end_us if self.billed_at_us == self.end_us - 1 else self.billed_at_us

    @property
    def is_prorated(self) -> bool:
        return self.fraction != 1

    def amount(self, full_period_amount: Decimal, rounding: ProrationRounding | None) -> Decimal:
        """The line's total, from what `quantity` units cost for a whole period."""
        exact = Fraction(full_period_amount) * self.fraction
        if rounding is not None and self.is_prorated:
            return rounding.apply(exact)
        return _decimal(exact)


def quantity_schedule(changes: Sequence[QuantityChange]) -> list[tuple[int, Decimal]]:
    """Apply changes in time order (equal times in the order made); refuse a negative quantity."""
    ordered = sorted(enumerate(changes), key=lambda item: (item[1].starting_at_us, item[0]))
    result: list[tuple[int, Decimal]] = []
    current = ZERO
    for _index, change in ordered:
        current = change.applied_to(current)
        if current < 0:
            when = format_rfc3339(change.starting_at_us)
            raise InvalidInput(f"quantity: would be {current} from {when}; it must not be negative")
        if result and result[-1][0] == change.starting_at_us:
            result[-1] = (change.starting_at_us, current)
        else:
            result.append((change.starting_at_us, current))
    return result


def period_charges(
    subscription: SubscriptionTerms, start_us: int, end_us: int, full_period_us: int
) -> list[PeriodCharge]:
    """What the billing period [start, end) owes (lines of quantity > 0); `full_period_us` is the
    length of the period unclipped by the contract's start or end, what proration divides by."""
    window = subscription.window(start_us, end_us)
    if window is None:
        return []
    stretches = _stretches(subscription.quantity_schedule(), *window)
    if subscription.collection_schedule == ADVANCE:
        charges = _advance(subscription, stretches, window, full_period_us)
    else:
        charges = _arrears(subscription, stretches, window, full_period_us)
    return [c for c in charges if c.quantity > 0]


def invoice_charges(
    subscription: SubscriptionTerms, schedule: Schedule, invoice_start_us: int, invoice_end_us: int
) -> list[PeriodCharge]:
    """What the usage invoice of [start, end) bills for the subscription, whose own periods
    `schedule` lays out: the charges of its periods billed at an instant of [start, end)."""
    charges: list[PeriodCharge] = []
    for period in schedule.periods_between(invoice_start_us, invoice_end_us):
        full = schedule.unclipped_period(period.start_us)
        charges += [
            c
            for c in period_charges(subscription, period.start_us, period.end_us, full.end_us - full.start_us)
            if invoice_start_us <= c.billed_at_us < invoice_end_us and not c.own_invoice
        ]
    return charges


def scheduled_invoice_charges(
    subscription: SubscriptionTerms, schedule: Schedule, since_us: int, now_us: int
) -> dict[int, list[PeriodCharge]]:
    """ON_SCHEDULED_INVOICE: the charges of the subscription's periods overlapping [since, now]
    (those started by now), by the date of the SCHEDULED invoice of its own that bills them
    (`PeriodCharge.invoice_date_us`); increases billed at once keep their own invoices."""
    by_date: dict[int, list[PeriodCharge]] = {}
    for period in schedule.periods_between(since_us, now_us + 1):
        full = schedule.unclipped_period(period.start_us)
        for charge in period_charges(
            subscription, period.start_us, period.end_us, full.end_us - full.start_us
        ):
            if not charge.own_invoice:
                by_date.setdefault(charge.invoice_date_us, []).append(charge)
    return by_date


def next_period_start(subscription: SubscriptionTerms, schedule: Schedule, now_us: int) -> int | None:
    """When the subscription's next period after `now_us` starts within it (None: none)."""
    current = schedule.period_containing(now_us)
    following = current.end_us if current is not None else max(now_us + 1, schedule.contract_start_us)
    if following <= now_us or schedule.period_containing(following) is None:
        return None
    if subscription.ending_before_us is not None and following >= subscription.ending_before_us:
        return None
    return following


def immediate_charges(subscription: SubscriptionTerms, schedule: Schedule) -> list[PeriodCharge]:
    """The increases billed at once (BILL_IMMEDIATELY), each on an invoice of its own at the
    increase: those of every period that holds a quantity change (a finite list, however long
    the subscription lasts)."""
    if subscription.invoice_behavior != BILL_IMMEDIATELY or subscription.collection_schedule != ADVANCE:
        return []
    charges: list[PeriodCharge] = []
    seen: set[int] = set()
    for at_us, _quantity in subscription.quantity_schedule()[1:]:
        period = schedule.period_containing(at_us)
        if period is None or period.start_us in seen:
            continue
        seen.add(period.start_us)
        full = schedule.unclipped_period(period.start_us)
        found = period_charges(subscription, period.start_us, period.end_us, full.end_us - full.start_us)
        charges += [c for c in found if c.own_invoice]
    return charges


def _arrears(
    subscription: SubscriptionTerms,
    stretches: list[tuple[int, int, Decimal]],
    window: tuple[int, int],
    full_period_us: int,
) -> list[PeriodCharge]:
    last_moment = window[1] - 1
    if not subscription.is_prorated:
        highest = max(q for _s, _e, q in stretches)
        return [PeriodCharge(subscription.id, window[0], window[1], highest, Fraction(1), last_moment)]
    return [
        PeriodCharge(subscription.id, s, e, q, Fraction(e - s, full_period_us), last_moment)
        for s, e, q in stretches
    ]


def _advance(
    subscription: SubscriptionTerms,
    stretches: list[tuple[int, int, Decimal]],
    window: tuple[int, int],
    full_period_us: int,
) -> list[PeriodCharge]:
    def share(start_us: int) -> Fraction:
        return Fraction(window[1] - start_us, full_period_us) if subscription.is_prorated else Fraction(1)

    first = stretches[0][2]
    charges = [PeriodCharge(subscription.id, window[0], window[1], first, share(window[0]), window[0])]
    billed = first
    at_once = subscription.invoice_behavior == BILL_IMMEDIATELY
    for start_us, _end_us, quantity in stretches[1:]:
        if quantity > billed:
            increase = quantity - billed
            billed_at = start_us if at_once else window[1] - 1
            charges.append(
                PeriodCharge(
                    subscription.id, start_us, window[1], increase, share(start_us), billed_at, at_once
                )
            )
            billed = quantity
    return charges


def _stretches(
    schedule: Sequence[tuple[int, Decimal]], start_us: int, end_us: int
) -> list[tuple[int, int, Decimal]]:
    """[start, end) cut where the quantity changes: (from, to, quantity), in order."""
    current = ZERO
    points: list[tuple[int, Decimal]] = []
    for at_us, quantity in schedule:
        if at_us <= start_us:
            current = quantity
        elif at_us < end_us:
            points.append((at_us, quantity))
    result: list[tuple[int, int, Decimal]] = []
    cursor = start_us
    for at_us, quantity in points:
        result.append((cursor, at_us, current))
        cursor, current = at_us, quantity
    result.append((cursor, end_us, current))
    return result


def _decimal(exact: Fraction) -> Decimal:
    if exact.denominator == 1:
        return Decimal(exact.numerator)
    with localcontext() as context:
        context.prec = 100
        terminating = Decimal(exact.numerator) / Decimal(exact.denominator)
    if Fraction(terminating) == exact:
        return terminating
    return _quantized(exact, DEFAULT_PLACES, ROUND_HALF_UP)


def _quantized(exact: Fraction, places: int, method: str) -> Decimal:
    with localcontext() as context:
        context.prec = 100
        value = Decimal(exact.numerator) / Decimal(exact.denominator)
        return value.quantize(Decimal(1).scaleb(-places), rounding=method)
