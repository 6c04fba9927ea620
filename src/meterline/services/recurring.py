"""A contract's recurring commits and credits: the rules they meet, and the commits their periods
create when the contract is created.

A recurring commit with an end (its own `ending_before`, or its contract's) has every period's
commit stored with the contract: the engine sees the periods to come as segments to come (its
wake-ups re-measure balances as each starts), and the API shows a period's commit from the
moment its period starts (`CommitRecord.created_by`), as Metronome creates it then. One without
an end has the commits of the periods started so far; the engine creates each later one when its
period starts (`engine.recurring_periods`). Each names its recurring commit (`recurring_id`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from sqlalchemy import Connection

from meterline.domain.commit_rules import AccessItem, field_path
from meterline.domain.contracts import CREDIT, AccessSegment, ContractTerms
from meterline.domain.errors import InvalidInput
from meterline.domain.ids import new_id
from meterline.domain.recurring import (
    INDIVIDUAL,
    MAX_PERIODS,
    RecurringGrant,
    RecurringSpec,
    Rounding,
    terms_of,
)
from meterline.domain.seat_allocation import PeriodGrant, period_access
from meterline.domain.subscriptions import SubscriptionTerms
from meterline.domain.timeutil import US_PER_HOUR, format_rfc3339
from meterline.services.commits import check_new_commit
from meterline.store import commits, contracts
from meterline.store.commits import InvoiceItemRecord, InvoiceScheduleRecord, NewCommit
from meterline.store.contracts import ContractRecord, NewContract
from meterline.store.recurring_commits import period_commit, period_commit_with
from meterline.store.subscriptions import NewSubscription, SubscriptionRecord


@dataclass(frozen=True, slots=True)
class RecurringUpdate:
    """v2 contracts/edit `update_recurring_commits` / `update_recurring_credits`: what is given changes."""

    recurring_id: str
    unit_price: Decimal | None = None
    quantity: Decimal | None = None
    set_end: bool = False  # ending_before given (None: no end of its own)
    ending_before_us: int | None = None
    invoice_unit_price: Decimal | None = None
    invoice_quantity: Decimal | None = None
    set_rounding: bool = False  # proration_rounding given (None: the default)
    rounding: Rounding | None = None
    invoice_rounding: Rounding | None = None


def update_specs(
    conn: Connection,
    contract: ContractRecord,
    updates: Sequence[RecurringUpdate],
    *,
    credits: bool,
    now_us: int,
) -> None:
    """Apply `update_recurring_commits` (or, with `credits`, `_credits`), as Metronome: the commits
    of periods that have not started are made again from the terms as updated; those of periods
    started (active or over) stay as they are. One tied to a subscription is refused."""
    field = "update_recurring_credits" if credits else "update_recurring_commits"
    id_field = "recurring_credit_id" if credits else "recurring_commit_id"
    what = "recurring credit" if credits else "recurring commit"
    specs = {s.id: s for s in contract.recurring}
    updated: list[RecurringSpec] = []
    for index, change in enumerate(updates):
        path = f"{field}.{index}"
        found = specs.get(change.recurring_id)
        if found is None or (found.kind == CREDIT) != credits:
            raise InvalidInput(
                f"{path}.{id_field}: contract {contract.id} has no {what} {change.recurring_id}"
            )
        if found.subscription is not None:
            raise InvalidInput(
                f"{path}.{id_field}: {what} {found.id} follows a subscription (subscription_config); "
                "meterline does not update one yet"
            )
        specs[found.id] = _updated(found, change, path)
        updated.append(specs[found.id])
    new = on_contract(contract, tuple(updated))
    for spec in updated:
        commits.delete_commits(
            conn,
            [
                c.id
                for c in commits.commits_of_recurring(conn, spec.id)
                if c.segments[0].starting_at_us > now_us
            ],
        )
    store_period_commits(
        conn, new, contract.id, now_us, contract.subscriptions, prefix="update_", starting_after_us=now_us
    )
    contracts.set_recurring(conn, contract.id, list(specs.values()))


def on_contract(
    contract: ContractRecord,
    specs: tuple[RecurringSpec, ...],
    subscriptions: tuple[NewSubscription, ...] = (),
) -> NewContract:
    """Recurring commits and credits to check and store on a contract already made (an edit's),
    as `store_period_commits` takes them: with its span, statement schedule and customer, and
    the subscriptions the same edit adds."""
    return NewContract(
        customer_id=contract.customer_id,
        starting_at_us=contract.starting_at_us,
        rate_card_id=contract.rate_card_id,
        ending_before_us=contract.ending_before_us,
        schedule=contract.schedule,
        recurring=specs,
        subscriptions=subscriptions,
    )


def _updated(found: RecurringSpec, change: RecurringUpdate, path: str) -> RecurringSpec:
    spec = replace(
        found,
        unit_price=found.unit_price if change.unit_price is None else change.unit_price,
        quantity=found.quantity if change.quantity is None else change.quantity,
        ending_before_us=change.ending_before_us if change.set_end else found.ending_before_us,
    )
    if change.invoice_unit_price is not None or change.invoice_quantity is not None:
        if found.invoice is None:
            raise InvalidInput(f"{path}.invoice_amount: the recurring commit has no invoice_amount to update")
        spec = replace(
            spec,
            invoice=replace(
                found.invoice,
                unit_price=found.invoice.unit_price
                if change.invoice_unit_price is None
                else change.invoice_unit_price,
                quantity=found.invoice.quantity
                if change.invoice_quantity is None
                else change.invoice_quantity,
            ),
        )
    if change.set_rounding:
        spec = replace(spec, rounding=change.rounding, invoice_rounding=change.invoice_rounding)
    return spec


def with_ids(specs: tuple[RecurringSpec, ...]) -> tuple[RecurringSpec, ...]:
    return tuple(replace(spec, id=new_id()) for spec in specs)


def with_subscriptions(
    new: NewContract,
    subscribed: Sequence[SubscriptionRecord],
    existing: Sequence[SubscriptionRecord] = (),
    *,
    prefix: str = "",
) -> NewContract:
    """Each `subscription_config` naming its subscription by id: the temporary_id of a
    subscription of the same request, or the id of one the contract has already (`existing`);
    400 naming the field if none has it. `prefix` is that of the request's fields ("add_" in an edit)."""
    ids = {stored.id: stored.id for stored in existing}
    for index, (given, stored) in enumerate(zip(new.subscriptions, subscribed, strict=True)):
        if given.temporary_id is not None:
            if given.temporary_id in ids:
                raise InvalidInput(
                    f"{prefix}subscriptions.{index}.temporary_id: {given.temporary_id} is used twice"
                )
            ids[given.temporary_id] = stored.id
    seat_based = {stored.id for stored in (*existing, *subscribed) if stored.seat_based}
    named = "id or temporary_id" if existing else "temporary_id"
    linked: list[RecurringSpec] = []
    for path, spec in paths(new, prefix):
        link = spec.subscription
        if link is not None:
            if link.subscription_id not in ids:
                raise InvalidInput(
                    f"{field_path(path, 'subscription_config', 'subscription_id')}: no subscription of "
                    f"this contract has {named} {link.subscription_id}"
                )
            if link.allocation == INDIVIDUAL and ids[link.subscription_id] not in seat_based:
                raise InvalidInput(
                    f"{field_path(path, 'subscription_config', 'allocation')}: INDIVIDUAL allocates a "
                    f"balance per seat, so subscription {link.subscription_id} must be SEAT_BASED "
                    "(quantity_management_mode with seat_config); use POOLED for a quantity"
                )
            spec = replace(spec, subscription=replace(link, subscription_id=ids[link.subscription_id]))
        linked.append(spec)
    return replace(new, recurring=tuple(linked))  # paths() keeps the order of new.recurring


def paths(new: NewContract, prefix: str = "") -> list[tuple[str, RecurringSpec]]:
    """Each recurring commit and credit with its place in the request (its field after `prefix`)."""
    given: list[tuple[str, RecurringSpec]] = []
    counts = {"recurring_commits": 0, "recurring_credits": 0}
    for spec in new.recurring:
        field = "recurring_credits" if spec.kind == "CREDIT" else "recurring_commits"
        given.append((f"{prefix}{field}.{counts[field]}", spec))
        counts[field] += 1
    return given


def period_commits(
    new: NewContract,
    spec: RecurringSpec,
    path: str,
    now_us: int,
    subscriptions: Mapping[str, SubscriptionTerms],
) -> list[NewCommit]:
    """The commits the recurring commit creates now: one per period, every period when it has an
    end, those started by `now_us` when it has none (400 naming the field if its terms create
    too many, or one of nothing)."""
    _check_span(new, spec, path)
    made = period_access(spec, new.ending_before_us, new.statement_schedule(), subscriptions, now_us)
    if len(made) > MAX_PERIODS:
        raise InvalidInput(
            f"{field_path(path, 'ending_before')}: would create more than {MAX_PERIODS} commits; "
            "give an earlier end or a longer recurrence_frequency"
        )
    if spec.subscription is None:  # tied to a subscription, a period of no quantity grants 0
        for grant in made:
            _check_grant(grant, path)
    return [period_commit_with(spec, grant) for grant in made]


def _check_grant(grant: PeriodGrant, path: str) -> None:
    """A period's commit must grant something, and a prorated invoice must not be negative."""
    (item,) = grant.access
    start = format_rfc3339(item.starting_at_us)
    if item.amount <= 0:
        raise InvalidInput(
            f"{field_path(path, 'proration_rounding', 'access')}: rounds the prorated amount of "
            f"the period starting {start} to {item.amount}; each period must grant more than 0"
        )
    if grant.invoice_amount is not None and grant.invoice_amount < 0:
        raise InvalidInput(
            f"{field_path(path, 'proration_rounding', 'invoice')}: rounds the prorated invoice "
            f"amount of the period starting {start} to {grant.invoice_amount}; an invoice amount "
            "must not be negative"
        )


def store_period_commits(
    conn: Connection,
    new: NewContract,
    contract_id: str,
    created_at_us: int,
    subscribed: Sequence[SubscriptionRecord] = (),
    *,
    prefix: str = "",
    starting_after_us: int | None = None,
) -> None:
    """Check the contract's recurring commits and credits, and store the commits their periods
    create now, one microsecond apart from `created_at_us` on, so that they list in period order.
    `subscribed`: the contract's subscriptions; `prefix`: of the request's fields, as `paths`;
    `starting_after_us`: only the periods starting after it are stored (an update's)."""
    created = created_at_us
    subscriptions = {s.id: s.terms() for s in subscribed}
    for path, spec in paths(new, prefix):
        made = period_commits(new, spec, path, created_at_us, subscriptions)
        # The rules of commits (product, pricing unit, targets) hold for all periods alike.
        start = spec.starting_at_us
        # Tied to a subscription, a period of no quantity grants 0: the sample grants the unit price.
        sample = (
            made[0]
            if made and spec.subscription is None
            else period_commit(spec, RecurringGrant(spec.amount, start, start + US_PER_HOUR, _invoiced(spec)))
        )
        check_new_commit(
            conn,
            new.customer_id,
            sample,
            on_contract=True,
            path=path,
            credit_type_field="access_amount",
            invoice_field="invoice_amount",
        )
        for commit in made:
            if starting_after_us is not None and commit.access[0].starting_at_us <= starting_after_us:
                continue
            commits.insert_commit(
                conn, new.customer_id, commit, contract_id=contract_id, path=path, created_at_us=created
            )
            created += 1


def follow_subscriptions(conn: Connection, contract: ContractTerms, now_us: int) -> None:
    """After the contract's subscriptions changed: the commits of its recurring commits tied to a
    subscription grant what the quantities now say (segment ids kept where they start alike;
    those of periods not started yet, for a recurring commit without an end, are left to the
    engine, which creates each when its period starts)."""
    subscriptions = {s.id: s for s in contract.subscriptions}
    for spec in contract.recurring:
        if spec.subscription is None:
            continue
        stored = {c.segments[0].starting_at_us: c for c in commits.commits_of_recurring(conn, spec.id)}
        # Those the engine has created already count as started, whatever this clock says.
        started_by = max([now_us, *stored])
        wanted = period_access(
            spec, contract.ending_before_us, contract.schedule(), subscriptions, started_by
        )
        for grant in wanted:
            found = stored.get(grant.starting_at_us)
            if found is None:
                commits.insert_commit(
                    conn,
                    contract.customer_id,
                    period_commit_with(spec, grant),
                    contract_id=contract.id,
                    created_at_us=grant.starting_at_us,
                )
            elif _changed(found.segments, grant.access) or _invoice_changed(found.invoice_schedule, grant):
                commits.set_schedules(
                    conn,
                    found.id,
                    _segments(found.segments, grant.access),
                    _invoice_schedule(found.invoice_schedule, grant),
                )


def _changed(segments: Sequence[AccessSegment], access: Sequence[AccessItem]) -> bool:
    held = [(s.amount, s.starting_at_us, s.ending_before_us, s.seat) for s in segments]
    return held != [(i.amount, i.starting_at_us, i.ending_before_us, i.seat) for i in access]


def _invoice_changed(held: InvoiceScheduleRecord | None, grant: PeriodGrant) -> bool:
    if held is None or not grant.invoice_items:
        return False
    return [(i.timestamp_us, i.amount, i.unit_price, i.quantity) for i in held.items] != [
        (i.timestamp_us, i.amount, i.unit_price, i.quantity) for i in grant.invoice_items
    ]


def _invoice_schedule(held: InvoiceScheduleRecord | None, grant: PeriodGrant) -> InvoiceScheduleRecord | None:
    """The invoice a quantity now says (tied to a subscription), each item keeping the id of the
    old one dated alike, so an item already billed is not billed again."""
    if held is None or not grant.invoice_items:
        return held
    ids = {i.timestamp_us: i.id for i in held.items}
    items = tuple(
        InvoiceItemRecord(
            ids.get(i.timestamp_us) or new_id(), i.timestamp_us, i.amount, i.unit_price, i.quantity
        )
        for i in grant.invoice_items
    )
    return replace(held, items=items)


def _segments(old: Sequence[AccessSegment], access: Sequence[AccessItem]) -> list[AccessSegment]:
    """The new access items as segments, each keeping the id of the old one starting with it
    (for the same seat, when allocated per seat), so what was drawn from it stays drawn."""
    ids = {(s.starting_at_us, s.seat): s.id for s in old}
    return [
        AccessSegment(
            ids.get((i.starting_at_us, i.seat)) or new_id(),
            i.amount,
            i.starting_at_us,
            i.ending_before_us,
            i.seat,
        )
        for i in access
    ]


def _invoiced(spec: RecurringSpec) -> Decimal | None:
    return None if spec.invoice is None else spec.invoice.amount


def _check_span(new: NewContract, spec: RecurringSpec, path: str) -> None:
    if spec.starting_at_us < new.starting_at_us:
        raise InvalidInput(
            f"{field_path(path, 'starting_at')}: must not be before the contract's starting_at"
        )
    end = terms_of(spec, new.ending_before_us).ending_before_us
    if end is not None and end <= spec.starting_at_us:
        where = "ending_before" if spec.ending_before_us == end else "starting_at"
        raise InvalidInput(f"{field_path(path, where)}: the recurring commit must start before it ends")
