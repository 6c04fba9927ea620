"""Subscriptions: the rules a new subscription meets, and edits of its quantity or seats, end,
name and rounding.

A subscription bills a SUBSCRIPTION product at the rate card's rate for its billing frequency
(its charges are on the contract's usage invoices). It lies within the contract, and starts in
no closed billing period. Its quantity is managed directly (QUANTITY_ONLY) or is its seats
(SEAT_BASED); BILL_IMMEDIATELY (increases billed at once) needs ADVANCE collection. Its billing
cycle may have an anchor of its own, and its charges SCHEDULED invoices of their own
(`billing_cycle_config`). An edit changes nothing a finalized invoice billed: a quantity or seat change, or a new
end, before the end of the contract's last finalized invoice is refused. Every change asks the engine to bill the customer again in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import Connection

from meterline.domain.errors import InvalidInput, NotFound
from meterline.domain.ids import new_id
from meterline.domain.subscriptions import (
    ADVANCE,
    BILL_IMMEDIATELY,
    ProrationRounding,
    QuantityChange,
    SeatChange,
    as_unassigned_seats,
    quantity_schedule,
)
from meterline.domain.timeutil import format_rfc3339, now_us
from meterline.services import recurring
from meterline.store import contracts, invoices, partitions, products
from meterline.store import rates as rate_store
from meterline.store import subscriptions as store
from meterline.store.billing_requests import request_recompute
from meterline.store.contracts import ContractRecord
from meterline.store.subscriptions import (
    NewSubscription,
    QuantityChangeRecord,
    SeatChangeRecord,
    SubscriptionRecord,
)


@dataclass(frozen=True, slots=True)
class ContractSpan:
    """What a subscription must fit: its contract's span and rate card, and the earliest instant
    still billed (periods ending before it are closed: no invoice of theirs would bill it)."""

    starting_at_us: int
    ending_before_us: int | None
    rate_card_id: str
    billed_from_us: int


@dataclass(frozen=True, slots=True)
class SubscriptionUpdate:
    subscription_id: str
    changes: tuple[QuantityChange, ...] = ()
    # (field path, change) of `seat_updates`, in the order they apply at one instant
    seat_changes: tuple[tuple[str, SeatChange], ...] = ()
    set_ending_before: bool = False
    ending_before_us: int | None = None
    name: str | None = None
    set_rounding: bool = False
    rounding: ProrationRounding | None = None
    seat_group_key: str | None = None  # set: switch a QUANTITY_ONLY subscription to SEAT_BASED


def checked(
    conn: Connection, new: Sequence[NewSubscription], span: ContractSpan, *, path: str, created_us: int
) -> list[SubscriptionRecord]:
    """The new subscriptions as stored (with ids), each checked; errors name `path.<index>`."""
    return [_checked(conn, s, span, f"{path}.{index}", created_us) for index, s in enumerate(new)]


def add(
    conn: Connection,
    customer_id: str,
    contract_id: str,
    new: Sequence[NewSubscription],
    *,
    open_horizon_us: int,
) -> list[str]:
    """Add subscriptions to a contract (v2 contracts/edit `add_subscriptions`), starting after
    its last finalized invoice."""
    contract = editable_contract(conn, customer_id, contract_id)
    partitions.lock_home_partition(conn, customer_id)  # no batch finalizes one of its invoices meanwhile
    existing = store.subscriptions_of(conn, contract_id, for_update=True)
    now = now_us()
    finalized_until = invoices.finalized_until(conn, contract_id)
    billed_from = max(now - open_horizon_us, finalized_until or contract.starting_at_us)
    span = ContractSpan(
        contract.starting_at_us, contract.ending_before_us, contract.rate_card_id, billed_from
    )
    added = checked(conn, new, span, path="add_subscriptions", created_us=now)
    store.set_subscriptions(conn, contract_id, [*existing, *added])
    request_recompute(conn, customer_id)
    return [s.id for s in added]


def update(
    conn: Connection, customer_id: str, contract_id: str, updates: Sequence[SubscriptionUpdate]
) -> None:
    """Apply `update_subscriptions` of v2 contracts/edit, all or nothing."""
    contract = editable_contract(conn, customer_id, contract_id)
    partitions.lock_home_partition(conn, customer_id)  # no batch finalizes one of its invoices meanwhile
    by_id = {s.id: s for s in store.subscriptions_of(conn, contract_id, for_update=True)}
    finalized_until = invoices.finalized_until(conn, contract_id)
    made = now_us()
    for index, change in enumerate(updates):
        path = f"update_subscriptions.{index}"
        found = by_id.get(change.subscription_id)
        if found is None:
            raise InvalidInput(
                f"{path}.subscription_id: contract {contract_id} has no subscription {change.subscription_id}"
            )
        by_id[found.id] = _updated(found, change, contract, finalized_until, path, made)
    store.set_subscriptions(conn, contract_id, list(by_id.values()))
    edited = replace(contract, subscriptions=tuple(by_id.values()))
    recurring.follow_subscriptions(conn, edited.terms(), made)
    request_recompute(conn, customer_id)


def find(
    conn: Connection, customer_id: str, contract_id: str, subscription_id: str
) -> tuple[ContractRecord, SubscriptionRecord]:
    contract = contracts.get_contract(conn, customer_id, contract_id)
    for subscription in contract.subscriptions:
        if subscription.id == subscription_id:
            return contract, subscription
    raise NotFound(f"subscription_id: contract {contract_id} has no subscription {subscription_id}")


def editable_contract(conn: Connection, customer_id: str, contract_id: str) -> ContractRecord:
    """The contract an edit names: 404 if there is none, 400 if it is archived."""
    contract = contracts.get_contract(conn, customer_id, contract_id)
    if contract.archived_at_us is not None:
        raise InvalidInput(f"contract_id: contract {contract_id} is archived")
    return contract


def _checked(
    conn: Connection, new: NewSubscription, span: ContractSpan, path: str, created_us: int
) -> SubscriptionRecord:
    if new.invoice_behavior == BILL_IMMEDIATELY and new.collection_schedule != ADVANCE:
        raise InvalidInput(
            f"{path}.proration.invoice_behavior: BILL_IMMEDIATELY bills an increase paid in advance at "
            "once, so it needs collection_schedule ADVANCE; an ARREARS subscription bills its "
            "increases at the period's end"
        )
    starting_at = span.starting_at_us if new.starting_at_us is None else new.starting_at_us
    _check_span(new, span, starting_at, path)
    _check_product(conn, new.product_id, f"{path}.subscription_rate.product_id")
    _check_rate(conn, new, span.rate_card_id, starting_at, path)
    return SubscriptionRecord(
        id=new_id(),
        product_id=new.product_id,
        billing_frequency=new.billing_frequency,
        collection_schedule=new.collection_schedule,
        invoice_behavior=new.invoice_behavior,
        is_prorated=new.is_prorated,
        starting_at_us=starting_at,
        ending_before_us=new.ending_before_us,
        changes=_initial_quantity(new, starting_at, created_us),
        seat_group_key=new.seat_group_key,
        seat_changes=_initial_seats(new, starting_at, created_us),
        created_at_us=created_us,
        rounding=new.rounding,
        name=new.name,
        description=new.description,
        custom_fields=dict(new.custom_fields or {}),
        anchor_us=new.anchor_us,
        invoice_placement=new.invoice_placement,
    )


def _initial_quantity(
    new: NewSubscription, starting_at: int, created_us: int
) -> tuple[QuantityChangeRecord, ...]:
    if new.initial_quantity is None:
        return ()
    return (QuantityChangeRecord(QuantityChange(starting_at, new.initial_quantity), created_us),)


def _initial_seats(new: NewSubscription, starting_at: int, created_us: int) -> tuple[SeatChangeRecord, ...]:
    if new.seat_group_key is None:
        return ()
    initial = SeatChange(
        starting_at, add_seat_ids=new.initial_seat_ids, add_unassigned=new.initial_unassigned
    )
    return (SeatChangeRecord(initial, created_us),)


def _check_span(new: NewSubscription, span: ContractSpan, starting_at: int, path: str) -> None:
    if starting_at < span.starting_at_us:
        raise InvalidInput(f"{path}.starting_at: must not be before the contract's starting_at")
    if starting_at < span.billed_from_us:
        raise InvalidInput(
            f"{path}.starting_at: must not be before {format_rfc3339(span.billed_from_us)}: the billing "
            "periods before then are closed (finalized, or past the time usage may arrive), so no "
            "invoice would bill it"
        )
    if span.ending_before_us is not None and starting_at >= span.ending_before_us:
        raise InvalidInput(f"{path}.starting_at: must be before the contract's ending_before")
    end = new.ending_before_us
    if end is not None and end <= starting_at:
        raise InvalidInput(f"{path}.ending_before: must be after starting_at")
    if end is not None and span.ending_before_us is not None and end > span.ending_before_us:
        raise InvalidInput(f"{path}.ending_before: must not be after the contract's ending_before")


def _check_product(conn: Connection, product_id: str, where: str) -> None:
    try:
        product = products.get_product(conn, product_id)
    except NotFound:
        raise InvalidInput(f"{where}: no product with id {product_id}") from None
    if product.type != "SUBSCRIPTION":
        raise InvalidInput(
            f"{where}: product {product_id} is a {product.type} product; a subscription needs a SUBSCRIPTION product"
        )
    if product.archived_at_us is not None:
        raise InvalidInput(f"{where}: product {product_id} is archived")


def _check_rate(conn: Connection, new: NewSubscription, rate_card_id: str, at_us: int, path: str) -> None:
    rates = rate_store.rates_at(conn, rate_card_id, at_us)
    if not any(
        r.product_id == new.product_id and r.billing_frequency == new.billing_frequency for r in rates
    ):
        raise InvalidInput(
            f"{path}.subscription_rate: rate card {rate_card_id} has no {new.billing_frequency} rate for "
            f"product {new.product_id} at {format_rfc3339(at_us)}"
        )


def _updated(
    found: SubscriptionRecord,
    change: SubscriptionUpdate,
    contract: ContractRecord,
    finalized_until: int | None,
    path: str,
    made_us: int,
) -> SubscriptionRecord:
    if change.seat_group_key is not None:
        found = _seat_based(found, change, path, made_us)
    if found.seat_based and change.changes:
        raise InvalidInput(
            f"{path}.quantity_updates: a SEAT_BASED subscription's quantity is its seats; use seat_updates"
        )
    if not found.seat_based and change.seat_changes:
        raise InvalidInput(
            f"{path}.seat_updates: only SEAT_BASED subscriptions have seats; use quantity_updates"
        )
    result = found
    for where, seats in change.seat_changes:
        _check_not_finalized(seats.starting_at_us, finalized_until, f"{path}.{where}.starting_at")
        if seats.starting_at_us < found.starting_at_us:
            raise InvalidInput(
                f"{path}.{where}.starting_at: must not be before the subscription's starting_at"
            )
        result = replace(result, seat_changes=(*result.seat_changes, SeatChangeRecord(seats, made_us)))
    for index, quantity in enumerate(change.changes):
        where = f"{path}.quantity_updates.{index}.starting_at"
        _check_not_finalized(quantity.starting_at_us, finalized_until, where)
        if quantity.starting_at_us < found.starting_at_us:
            raise InvalidInput(f"{where}: must not be before the subscription's starting_at")
        result = replace(result, changes=(*result.changes, QuantityChangeRecord(quantity, made_us)))
    try:
        quantity_schedule([c.change for c in result.changes])
    except InvalidInput as error:
        raise InvalidInput(f"{path}.quantity_updates: {error.message}") from None
    if change.set_ending_before:
        result = _with_end(
            result, change.ending_before_us, contract, finalized_until, f"{path}.ending_before"
        )
    if change.name is not None:
        result = replace(result, name=change.name)
    if change.set_rounding:
        result = replace(result, rounding=change.rounding)
    return result


def _seat_based(
    found: SubscriptionRecord, change: SubscriptionUpdate, path: str, made_us: int
) -> SubscriptionRecord:
    """The subscription switched to SEAT_BASED: every quantity it has had or will have becomes that
    many unassigned seats (billing nothing differently); its seats change from then on."""
    where = f"{path}.quantity_management_mode_update"
    if found.seat_based:
        raise InvalidInput(f"{where}: subscription {found.id} is already SEAT_BASED")
    if change.changes:
        raise InvalidInput(
            f"{path}.quantity_updates: a subscription switched to SEAT_BASED changes its seats; use seat_updates"
        )
    try:
        seats = as_unassigned_seats(found.terms().quantity_schedule())
    except InvalidInput as error:
        raise InvalidInput(f"{where}: {error.message}") from None
    return replace(
        found,
        changes=(),
        seat_group_key=change.seat_group_key,
        seat_changes=tuple(SeatChangeRecord(s, made_us) for s in seats),
    )


def _with_end(
    found: SubscriptionRecord,
    end_us: int | None,
    contract: ContractRecord,
    finalized_until: int | None,
    where: str,
) -> SubscriptionRecord:
    if end_us is not None and end_us <= found.starting_at_us:
        raise InvalidInput(f"{where}: must be after the subscription's starting_at")
    if end_us is not None and contract.ending_before_us is not None and end_us > contract.ending_before_us:
        raise InvalidInput(f"{where}: must not be after the contract's ending_before")
    old_end = found.ending_before_us if found.ending_before_us is not None else contract.ending_before_us
    if end_us != old_end:  # billing changes from the earlier of the two ends on
        _check_not_finalized(min(e for e in (end_us, old_end) if e is not None), finalized_until, where)
    return replace(found, ending_before_us=end_us)


def cut_at_contract_end(conn: Connection, contract: ContractRecord, end_us: int, field: str) -> None:
    """The contract's end moves earlier, to `end_us`: as Metronome documents for contracts/updateEndDate
    ("ending a contract early will ... truncate any terms"), a subscription with an end of its own
    past it ends there instead (one without an end follows the contract's). One that would not have
    started by then is refused: ending it would leave nothing of it, and meterline never drops one
    silently."""
    held = store.subscriptions_of(conn, contract.id, for_update=True)
    for subscription in held:
        if subscription.starting_at_us >= end_us:
            raise InvalidInput(
                f"{field}: subscription {subscription.id} of contract {contract.id} starts at "
                f"{format_rfc3339(subscription.starting_at_us)}; a contract may not end before one "
                "of its subscriptions starts"
            )
    cut = [
        replace(s, ending_before_us=end_us)
        if s.ending_before_us is not None and s.ending_before_us > end_us
        else s
        for s in held
    ]
    if cut != held:
        store.set_subscriptions(conn, contract.id, cut)


def _check_not_finalized(at_us: int, finalized_until: int | None, where: str) -> None:
    if finalized_until is not None and at_us < finalized_until:
        raise InvalidInput(
            f"{where}: the contract has a finalized invoice until {format_rfc3339(finalized_until)}; "
            "a change may not reach back before that"
        )
