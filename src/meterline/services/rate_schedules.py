"""Rate schedules: a rate card's rates over a time range, and a contract's rates at an instant.

A contract's rate is its rate card's, with the contract's overrides in force applied exactly as
the billing engine applies them (`domain.pricing.apply_overrides`). Its segment is the part of the
rate's span around the instant during which the same overrides are in force, within the contract:
a price shown for a segment holds for all of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from meterline.domain.contracts import ContractTerms, OverrideTerms
from meterline.domain.errors import InvalidInput
from meterline.domain.pricing import PriceSpec, apply_overrides, winning_overwrite
from meterline.domain.products import ProductState
from meterline.store import contracts, products
from meterline.store import rates as store
from meterline.store.rates import RateRecord


@dataclass(frozen=True, slots=True)
class ScheduledRate:
    """A rate card's rate, with the product as it was at the schedule's start."""

    rate: RateRecord
    product: ProductState


@dataclass(frozen=True, slots=True)
class ContractRate:
    """A rate of a contract over a segment: the list rate, and the overridden one if any."""

    rate: RateRecord
    product: ProductState
    starting_at_us: int
    ending_before_us: int | None
    entitled: bool
    override_price: PriceSpec | None = None
    override_credit_type_id: str | None = None  # the overwrite's own unit, if it names one


def rate_card_schedule(
    conn: Connection,
    rate_card_id: str,
    starting_at_us: int,
    ending_before_us: int | None,
    after: tuple[int, int] | None,
) -> list[ScheduledRate]:
    """The rate card's rates in force at some time in [starting_at, ending_before), by starting_at
    then seq, after the position `after` (a page's last (starting_at, seq))."""
    if ending_before_us is not None and ending_before_us <= starting_at_us:
        raise InvalidInput("ending_before: must be after starting_at")
    found = store.rates_overlapping(conn, rate_card_id, starting_at_us, ending_before_us, after=after)
    states = products.products_at(conn, sorted({r.product_id for r in found}), starting_at_us)
    return [ScheduledRate(r, states[r.product_id]) for r in found]


def contract_schedule(
    conn: Connection, customer_id: str, contract_id: str, at_us: int, after_seq: int | None
) -> list[ContractRate]:
    """The contract's rates in force at `at_us`, by seq (none outside the contract's span)."""
    terms = contracts.get_contract(conn, customer_id, contract_id).terms()
    if not _within(terms, at_us):
        return []
    found = store.rates_at(conn, terms.rate_card_id, at_us, after_seq=after_seq)
    states = products.products_at(conn, sorted({r.product_id for r in found}), at_us)
    return [_contract_rate(terms, r, states[r.product_id], at_us) for r in found]


def _within(terms: ContractTerms, at_us: int) -> bool:
    return terms.starting_at_us <= at_us and (
        terms.ending_before_us is None or at_us < terms.ending_before_us
    )


def _contract_rate(terms: ContractTerms, rate: RateRecord, product: ProductState, at_us: int) -> ContractRate:
    targeting = [
        o
        for o in terms.overrides
        if o.applies_to(product, rate.billing_frequency) and _applies_to_rate(o, rate)
    ]
    in_force = [o.as_override() for o in targeting if o.in_force(at_us)]
    start, end = _segment(terms, rate, targeting, at_us)
    said = [o.entitled for o in in_force if o.entitled is not None]
    entitled = said[-1] if said else rate.entitled  # as the engine decides it
    if not in_force:
        return ContractRate(rate, product, start, end, entitled)
    overwrite = winning_overwrite(in_force)
    return ContractRate(
        rate,
        product,
        start,
        end,
        entitled,
        override_price=apply_overrides(rate.price, in_force, terms.explicit_override_priority),
        override_credit_type_id=overwrite.overwrite_credit_type_id if overwrite is not None else None,
    )


def _applies_to_rate(override: OverrideTerms, rate: RateRecord) -> bool:
    """The engine applies an override to usage whose pricing group values it names (all of them)."""
    wanted = override.pricing_group_values
    return wanted is None or all(rate.pricing_group_values.get(k) == v for k, v in wanted.items())


def _segment(
    terms: ContractTerms, rate: RateRecord, overrides: Sequence[OverrideTerms], at_us: int
) -> tuple[int, int | None]:
    """Around `at_us`: the rate's span within the contract's, cut where an override starts or ends."""
    bounds = [b for o in overrides for b in (o.starting_at_us, o.ending_before_us) if b is not None]
    start = max([rate.starting_at_us, terms.starting_at_us, *(b for b in bounds if b <= at_us)])
    ends = [e for e in (rate.ending_before_us, terms.ending_before_us) if e is not None]
    ends += [b for b in bounds if b > at_us]
    return start, min(ends) if ends else None
