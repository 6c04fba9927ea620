"""Rates on rate cards: adding them (newer rates take over overlapping ranges, see domain/rates.py)
and reading the rates in force at an instant (getRates, getContractRateSchedule, the billing
engine) or over a time range (getRateSchedule).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, delete, or_, select, tuple_, update

from meterline.domain.errors import NotFound
from meterline.domain.pricing import PriceSpec, Tier
from meterline.domain.rates import (
    RateInForce,
    Span,
    remaining_after,
)
from meterline.domain.timeutil import now_us
from meterline.store.rate_cards import get_rate_card
from meterline.store.tables import credit_types as credit_types_table
from meterline.store.tables import rates

PRICING_GROUP_VALUES_MAX_CHARS = 1024


@dataclass(frozen=True, slots=True)
class NewRate:
    product_id: str
    entitled: bool
    rate_type: str
    starting_at_us: int
    ending_before_us: int | None = None
    price: Decimal | None = None
    tiers: tuple[Tier, ...] | None = None
    credit_type_id: str | None = None  # None: the rate card's fiat pricing unit
    pricing_group_values: Mapping[str, str] = field(default_factory=dict)
    billing_frequency: str | None = None  # rates of SUBSCRIPTION products only


@dataclass(frozen=True, slots=True)
class RateRecord:
    seq: int
    rate_card_id: str
    product_id: str
    pricing_group_values: dict[str, str]
    entitled: bool
    rate_type: str
    credit_type_id: str
    credit_type_name: str
    price: PriceSpec
    starting_at_us: int
    ending_before_us: int | None
    billing_frequency: str | None = None

    def in_force(self) -> RateInForce:
        return RateInForce(
            rate_card_id=self.rate_card_id,
            product_id=self.product_id,
            pricing_group_values=self.pricing_group_values,
            entitled=self.entitled,
            credit_type_id=self.credit_type_id,
            price=self.price,
            starting_at_us=self.starting_at_us,
            ending_before_us=self.ending_before_us,
            billing_frequency=self.billing_frequency,
        )


def get_rate(conn: Connection, seq: int) -> RateRecord:
    found = _select(conn, rates.c.seq == seq)
    if not found:
        raise NotFound(f"rate: no rate {seq}")
    return found[0]


def rates_at(
    conn: Connection, rate_card_id: str, at_us: int, *, after_seq: int | None = None
) -> list[RateRecord]:
    """Every rate of the rate card in force at `at_us` (starting_at inclusive, ending_before exclusive)."""
    get_rate_card(conn, rate_card_id)
    conditions = [
        rates.c.rate_card_id == rate_card_id,
        rates.c.starting_at_us <= at_us,
        or_(rates.c.ending_before_us.is_(None), rates.c.ending_before_us > at_us),
    ]
    if after_seq is not None:
        conditions.append(rates.c.seq > after_seq)
    return _select(conn, *conditions)


def rates_overlapping(
    conn: Connection,
    rate_card_id: str,
    start_us: int,
    end_us: int | None,
    *,
    after: tuple[int, int] | None = None,
) -> list[RateRecord]:
    """Every rate of the rate card in force at some instant of [start_us, end_us) (None: no end),
    by starting_at then seq, after the (starting_at, seq) position `after`."""
    get_rate_card(conn, rate_card_id)
    conditions = [
        rates.c.rate_card_id == rate_card_id,
        or_(rates.c.ending_before_us.is_(None), rates.c.ending_before_us > start_us),
    ]
    if end_us is not None:
        conditions.append(rates.c.starting_at_us < end_us)
    if after is not None:
        conditions.append(tuple_(rates.c.starting_at_us, rates.c.seq) > tuple_(*after))
    return _select(conn, *conditions, order_by=(rates.c.starting_at_us, rates.c.seq))


def rates_in_force(conn: Connection, rate_card_id: str, at_us: int) -> list[RateInForce]:
    """The rate card's prices at `at_us`: what the billing engine prices usage with."""
    return [r.in_force() for r in rates_at(conn, rate_card_id, at_us)]


def insert_rate(
    conn: Connection, rate_card_id: str, rate: NewRate, spec: PriceSpec, credit_type_id: str, group_text: str
) -> int:
    """Store a rate `services.rates` has checked, reshaping the older rates of its product and
    group that it overlaps (the newer wins); returns its `seq`."""
    span = Span(rate.starting_at_us, rate.ending_before_us)
    _make_room(conn, rate_card_id, rate, group_text, span)
    inserted = conn.execute(
        rates.insert().values(
            rate_card_id=rate_card_id,
            product_id=rate.product_id,
            pricing_group_values=group_text,
            entitled=rate.entitled,
            rate_type=rate.rate_type,
            credit_type_id=credit_type_id,
            price=spec.price,
            tiers=_tiers_json(spec.tiers) if spec.is_tiered else None,
            starting_at_us=span.start_us,
            ending_before_us=span.end_us,
            billing_frequency=rate.billing_frequency,
            created_at_us=now_us(),
        )
    )
    key = inserted.inserted_primary_key
    assert key is not None
    return int(key[0])


def _make_room(conn: Connection, rate_card_id: str, rate: NewRate, group_text: str, newer: Span) -> None:
    """Reshape the older rates of this product, group and billing frequency that the new rate
    overlaps (a subscription product has one price per billing frequency)."""
    conditions = [
        rates.c.rate_card_id == rate_card_id,
        rates.c.product_id == rate.product_id,
        rates.c.pricing_group_values == group_text,
        rates.c.billing_frequency.is_(None)
        if rate.billing_frequency is None
        else rates.c.billing_frequency == rate.billing_frequency,
        or_(rates.c.ending_before_us.is_(None), rates.c.ending_before_us > newer.start_us),
    ]
    if newer.end_us is not None:
        conditions.append(rates.c.starting_at_us < newer.end_us)
    for row in conn.execute(select(rates).where(*conditions)).mappings().all():
        left = remaining_after(Span(row["starting_at_us"], row["ending_before_us"]), newer)
        _reshape(conn, dict(row), left)


def _reshape(conn: Connection, row: dict[str, Any], left: list[Span]) -> None:
    if not left:
        conn.execute(delete(rates).where(rates.c.seq == row["seq"]))
        return
    first, rest = left[0], left[1:]
    conn.execute(
        update(rates)
        .where(rates.c.seq == row["seq"])
        .values(starting_at_us=first.start_us, ending_before_us=first.end_us)
    )
    for span in rest:  # the older price resumes after the new rate ends
        copy = {k: v for k, v in row.items() if k != "seq"}
        conn.execute(
            rates.insert().values({**copy, "starting_at_us": span.start_us, "ending_before_us": span.end_us})
        )


def _select(conn: Connection, *conditions: Any, order_by: Sequence[Any] = (rates.c.seq,)) -> list[RateRecord]:
    query = (
        select(rates, credit_types_table.c.name.label("credit_type_name"))
        .join(credit_types_table, credit_types_table.c.id == rates.c.credit_type_id)
        .where(*conditions)
        .order_by(*order_by)
    )
    return [_record(row) for row in conn.execute(query).mappings()]


def _record(row: Any) -> RateRecord:
    return RateRecord(
        seq=row["seq"],
        rate_card_id=row["rate_card_id"],
        product_id=row["product_id"],
        pricing_group_values=json.loads(row["pricing_group_values"]),
        entitled=row["entitled"],
        rate_type=row["rate_type"],
        credit_type_id=row["credit_type_id"],
        credit_type_name=row["credit_type_name"],
        price=_price(row),
        starting_at_us=row["starting_at_us"],
        ending_before_us=row["ending_before_us"],
        billing_frequency=row["billing_frequency"],
    )


def _price(row: Any) -> PriceSpec:
    if row["tiers"]:
        return PriceSpec(
            tiers=tuple(
                Tier(Decimal(t["price"]), None if t["size"] is None else Decimal(t["size"]))
                for t in row["tiers"]
            )
        )
    return PriceSpec(price=row["price"])


def _tiers_json(tiers: Sequence[Tier]) -> list[dict[str, str | None]]:
    return [{"price": str(t.price), "size": None if t.size is None else str(t.size)} for t in tiers]


def group_text(values: Mapping[str, str]) -> str:
    """Pricing group values as stored (and compared): canonical JSON."""
    return json.dumps(dict(values), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
