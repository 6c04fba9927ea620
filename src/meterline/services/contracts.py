"""Contracts: the rules a new contract (with its commits and credits) must meet, and archiving.

A contract names an active customer and rate card (by id, or by alias at its starting_at), a
consistent span and statement schedule, overrides whose products and pricing units exist, and
subscriptions that `services.subscriptions` checks.
Its commits and credits are checked by `services.commits` as each is stored, in the order given,
so the first broken rule answers, and nothing is written (the caller's transaction rolls back).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

from sqlalchemy import Connection

from meterline.domain.commit_rules import field_path
from meterline.domain.contract_rules import EXPLICIT, check_contract_span, check_statement_anchor
from meterline.domain.errors import InvalidInput, NotFound
from meterline.domain.override_rules import OverrideSpec, check_override
from meterline.domain.threshold_billing import FIELDS, ThresholdConfig
from meterline.domain.timeutil import US_PER_HOUR, now_us
from meterline.services import recurring, subscriptions, transitions
from meterline.services.commits import check_new_commit, check_scheduled_charge
from meterline.services.custom_fields import check_unique
from meterline.services.customers import active_customer
from meterline.services.invoice_corrections import void_finalized_of_contract
from meterline.services.rate_cards import active_rate_card
from meterline.store import commits, credit_types, products, rate_cards
from meterline.store import contracts as store
from meterline.store.billing_requests import request_recompute
from meterline.store.contracts import NewContract
from meterline.store.rate_cards import RateCardRecord
from meterline.store.threshold_configs import bought_commit


def create_contract(conn: Connection, new: NewContract, *, open_horizon_us: int) -> str:
    """Check and store a contract with its commits and credits, all or nothing; periods that
    ended `open_horizon_us` ago are closed (no subscription may start in them)."""
    active_customer(conn, new.customer_id)
    check_contract_span(new.starting_at_us, new.ending_before_us)
    check_statement_anchor(new.schedule.day, new.schedule.billing_anchor_us)
    card = _rate_card(conn, new)
    check_overrides(conn, new.overrides, card, new.prioritization == EXPLICIT)
    check_unique(conn, "contract", new.custom_fields, "custom_fields")
    for index, charge in enumerate(new.scheduled_charges):
        check_scheduled_charge(conn, charge, f"scheduled_charges.{index}")
    check_thresholds(conn, new.customer_id, new.thresholds, new.starting_at_us, card)
    source = transitions.checked_source(conn, new)
    created = now_us()
    new = replace(new, recurring=recurring.with_ids(new.recurring))
    span = subscriptions.ContractSpan(
        new.starting_at_us, new.ending_before_us, card.id, created - open_horizon_us
    )
    subscribed = subscriptions.checked(
        conn, new.subscriptions, span, path="subscriptions", created_us=created
    )
    new = recurring.with_subscriptions(new, subscribed)
    contract_id = store.insert_contract(conn, new, card.id, created, subscribed)
    # One microsecond apart, so that commits and credits list in the order they were given.
    given = [(f"commits.{i}", c) for i, c in enumerate(new.commits)]
    given += [(f"credits.{i}", c) for i, c in enumerate(new.credits)]
    for offset, (path, commit) in enumerate(given):
        check_new_commit(conn, new.customer_id, commit, on_contract=True, path=path)
        commits.insert_commit(
            conn, new.customer_id, commit, contract_id=contract_id, path=path, created_at_us=created + offset
        )
    recurring.store_period_commits(conn, new, contract_id, created + len(given), subscribed)
    if source is not None:
        transitions.take_over(conn, source, new.starting_at_us)
    request_recompute(conn, new.customer_id)
    return contract_id


def archive_contract(conn: Connection, customer_id: str, contract_id: str, *, void_invoices: bool) -> None:
    """Take the contract and its commits out of billing (they stay readable); archiving twice is
    a no-op. With `void_invoices`, its finalized invoices are voided too (what they drew from
    commits and credits is given back)."""
    contract = store.get_contract(conn, customer_id, contract_id)
    if contract.archived_at_us is None:
        if void_invoices:
            void_finalized_of_contract(conn, customer_id, contract_id, now_us())
        store.mark_archived(conn, contract_id, now_us())
    request_recompute(conn, customer_id)


def _rate_card(conn: Connection, new: NewContract) -> RateCardRecord:
    if new.rate_card_id is not None and new.rate_card_alias is not None:
        raise InvalidInput("rate_card_alias: give either rate_card_id or rate_card_alias, not both")
    rate_card_id = new.rate_card_id
    if rate_card_id is None:
        if new.rate_card_alias is None:
            raise InvalidInput("rate_card_id: is required (or give rate_card_alias)")
        rate_card_id = rate_cards.rate_card_id_by_alias(conn, new.rate_card_alias, new.starting_at_us)
        if rate_card_id is None:
            raise InvalidInput(
                f"rate_card_alias: no rate card holds alias {new.rate_card_alias!r} at the contract's starting_at"
            )
    return active_rate_card(conn, rate_card_id)


def check_overrides(
    conn: Connection,
    overrides: Sequence[OverrideSpec],
    card: RateCardRecord,
    explicit: bool,
    field: str = "overrides",
) -> None:
    """Overrides of a contract on `card` (`field`: where the request gives them)."""
    for index, override in enumerate(overrides):
        path = f"{field}.{index}"
        check_override(override, path, explicit)
        if override.product_id is not None:
            _check_product(conn, override.product_id, field_path(path, "product_id"))
        for spec_index, target in enumerate(override.specifiers):
            if target.product_id is not None:
                where = field_path(path, "override_specifiers", spec_index, "product_id")
                _check_product(conn, target.product_id, where)
        rate = override.overwrite_rate
        if rate is not None and rate.credit_type_id is not None:
            _check_overwrite_credit_type(conn, card, rate.credit_type_id, path)


def check_thresholds(
    conn: Connection,
    customer_id: str,
    thresholds: Sequence[ThresholdConfig],
    starting_at_us: int,
    card: RateCardRecord,
    prefix: str = "",
) -> None:
    """A bought commit follows the rules of commits (its product, targets), checked now on a
    sample of it; a recharge lifts the balance above its threshold. `prefix`: of the request's
    fields ("add_" in an edit)."""
    for config in thresholds:
        path = f"{prefix}{FIELDS[config.kind]}"
        if config.recharge_to_amount is not None and config.recharge_to_amount <= config.threshold_amount:
            raise InvalidInput(f"{path}.recharge_to_amount: must be greater than threshold_amount")
        start = starting_at_us
        sample = bought_commit(
            config, Decimal(1), (start, start + US_PER_HOUR), start, card.fiat_credit_type_id
        )
        # Its invoice item is the engine's to write; the sample is checked for what the request says.
        check_new_commit(
            conn, customer_id, replace(sample, invoice=None), on_contract=True, path=f"{path}.commit"
        )


def _check_product(conn: Connection, product_id: str, where: str) -> None:
    try:
        products.get_product(conn, product_id)
    except NotFound:
        raise InvalidInput(f"{where}: no product with id {product_id}") from None


def _check_overwrite_credit_type(
    conn: Connection, card: RateCardRecord, credit_type_id: str, path: str
) -> None:
    """An overwrite is priced in the rate card's fiat unit or in a custom unit the card converts."""
    where = field_path(path, "overwrite_rate", "credit_type_id")
    if credit_type_id == card.fiat_credit_type_id or card.fiat_per_custom_credit(credit_type_id) is not None:
        return
    try:
        credit_types.get_credit_type(conn, credit_type_id)
    except NotFound:
        raise InvalidInput(f"{where}: no pricing unit with id {credit_type_id}") from None
    raise InvalidInput(
        f"{where}: the contract's rate card neither is priced in nor converts pricing unit {credit_type_id}"
    )
