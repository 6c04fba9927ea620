"""Rates: the rules each new rate must meet before it is stored.

A rate has a valid price (FLAT or TIERED) over a non-empty span, names a product that is not
archived, and pricing group values that match the product's pricing group key; it is priced in
the rate card's fiat unit or in a custom unit the card converts. Rates are added in order, all or
nothing; an error in a list names the rate ("rates.3.price: ...").
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from meterline.domain.errors import InvalidInput, NotFound
from meterline.domain.products import ProductState
from meterline.domain.rates import (
    Span,
    check_billing_frequency,
    check_pricing_group_values,
    check_span,
    price_spec,
)
from meterline.services.rate_cards import active_rate_card
from meterline.store import credit_types, products
from meterline.store import rates as store
from meterline.store.rate_cards import RateCardRecord, lock_rate_card
from meterline.store.rates import PRICING_GROUP_VALUES_MAX_CHARS, NewRate


def add_rates(
    conn: Connection, rate_card_id: str, new_rates: Sequence[NewRate], *, list_field: str | None = None
) -> list[int]:
    """Add rates in order (later ones win where they overlap earlier ones); all or nothing.

    Returns the new rates' `seq`s. `list_field` is the request field holding the rates, if they
    came as a list, so that an error names the rate: "rates.3.price: ...".
    """
    lock_rate_card(conn, rate_card_id)
    card = active_rate_card(conn, rate_card_id)
    added = []
    for index, rate in enumerate(new_rates):
        try:
            added.append(_add(conn, card, rate))
        except InvalidInput as error:
            prefix = f"{list_field}.{index}." if list_field else ""
            raise InvalidInput(prefix + error.message) from None
    return added


def _add(conn: Connection, card: RateCardRecord, rate: NewRate) -> int:
    spec = price_spec(rate.rate_type, rate.price, rate.tiers)
    check_span(Span(rate.starting_at_us, rate.ending_before_us))
    product = _rated_product(conn, rate.product_id, rate.starting_at_us)
    check_billing_frequency(product.type, rate.rate_type, rate.billing_frequency)
    check_pricing_group_values(rate.pricing_group_values, product.pricing_group_key)
    credit_type_id = _credit_type_for(conn, card, rate.credit_type_id)
    group_text = store.group_text(rate.pricing_group_values)
    if len(group_text) > PRICING_GROUP_VALUES_MAX_CHARS:
        raise InvalidInput(
            f"pricing_group_values: must be at most {PRICING_GROUP_VALUES_MAX_CHARS} characters as JSON"
        )
    return store.insert_rate(conn, card.id, rate, spec, credit_type_id, group_text)


def _rated_product(conn: Connection, product_id: str, at_us: int) -> ProductState:
    try:
        product = products.get_product(conn, product_id)
    except NotFound:
        raise InvalidInput(f"product_id: no product with id {product_id}") from None
    if product.archived_at_us is not None:
        raise InvalidInput(f"product_id: product {product_id} is archived and takes no new rates")
    return product.state_at(at_us)


def _credit_type_for(conn: Connection, card: RateCardRecord, credit_type_id: str | None) -> str:
    """A rate is priced in the card's fiat unit or in a custom unit the card can convert to fiat."""
    if credit_type_id is None or credit_type_id == card.fiat_credit_type_id:
        return card.fiat_credit_type_id
    if card.fiat_per_custom_credit(credit_type_id) is not None:
        return credit_type_id
    try:
        record = credit_types.get_credit_type(conn, credit_type_id)
    except NotFound:
        raise InvalidInput(f"credit_type_id: no pricing unit with id {credit_type_id}") from None
    if record.is_currency:
        raise InvalidInput(
            f"credit_type_id: {credit_type_id} is a currency other than the rate card's "
            f"fiat pricing unit {card.fiat_credit_type_id}"
        )
    raise InvalidInput(
        f"credit_type_id: the rate card has no conversion for pricing unit {credit_type_id}; "
        "add one with credit_type_conversions"
    )
