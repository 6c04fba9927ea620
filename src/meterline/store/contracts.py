"""Contracts: a customer's rate card over a time range, its usage statement schedule, overrides,
and the commits and credits created with it (store/commits.py keeps those).

Its scheduled charges are stored with it (`store.scheduled_charges`).
A contract changes after it is created only by edits (v2 contracts/edit: its name, payment terms,
new scheduled charges and recurring commits, its overrides and subscriptions), by its end moving
(contracts/updateEndDate, or a contract taking over from it: `transition_from_contract_id`), and by
archiving. Archiving takes the contract and its commits out of billing, but they stay
readable.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from meterline.domain.billing_periods import AnchorDay, Frequency, Schedule, schedule_for
from meterline.domain.contract_rules import (
    EXPLICIT,
    LOWEST_MULTIPLIER,
)
from meterline.domain.contracts import ContractTerms
from meterline.domain.errors import Conflict, NotFound
from meterline.domain.ids import new_id
from meterline.domain.override_rules import OverrideSpec, OverrideTarget, OverwriteRate
from meterline.domain.pricing import Tier
from meterline.domain.recurring import RecurringSpec
from meterline.domain.threshold_billing import ThresholdConfig
from meterline.store import recurring_commits, scheduled_charges, threshold_configs
from meterline.store.commits import KEY_USED, NewCommit
from meterline.store.scheduled_charges import NewScheduledCharge, ScheduledChargeRecord
from meterline.store.sql import among, grouped_by_customer
from meterline.store.subscriptions import NewSubscription, SubscriptionRecord
from meterline.store.subscriptions import from_json as subscriptions_from_json
from meterline.store.subscriptions import to_json as subscriptions_to_json
from meterline.store.tables import contracts, invoices

ON_USAGE_INVOICES = "ALL"  # the one value of scheduled_charges_on_usage_invoices


@dataclass(frozen=True, slots=True)
class StatementSchedule:
    frequency: Frequency = Frequency.MONTHLY
    day: AnchorDay = AnchorDay.FIRST_OF_MONTH
    billing_anchor_us: int | None = None  # CUSTOM_DATE only


@dataclass(frozen=True, slots=True)
class Transition:
    """contracts/create `transition`: the contract this one takes over from, at its start."""

    from_contract_id: str
    type: str  # RENEWAL or SUPERSEDE
    trueup: str | None = None  # future_invoice_behavior.trueup: REMOVE or AS_IS (None: AS_IS)


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    """A transition as contracts show it: from one contract to another."""

    from_contract_id: str
    to_contract_id: str
    type: str


@dataclass(frozen=True, slots=True)
class NewContract:
    customer_id: str
    starting_at_us: int
    rate_card_id: str | None = None
    rate_card_alias: str | None = None  # resolved at starting_at when rate_card_id is not given
    ending_before_us: int | None = None
    name: str | None = None
    schedule: StatementSchedule = StatementSchedule()
    prioritization: str = LOWEST_MULTIPLIER
    overrides: tuple[OverrideSpec, ...] = ()
    commits: tuple[NewCommit, ...] = ()
    credits: tuple[NewCommit, ...] = ()
    recurring: tuple[RecurringSpec, ...] = ()  # recurring commits, then recurring credits
    thresholds: tuple[ThresholdConfig, ...] = ()  # threshold billing (spend, prepaid balance)
    custom_fields: dict[str, str] = field(default_factory=dict)
    uniqueness_key: str | None = None
    # What integrations send that changes no amount, kept as given (see api/integration_fields.py).
    integration_fields: dict[str, Any] | None = None
    scheduled_charges: tuple[NewScheduledCharge, ...] = ()
    charges_on_usage_invoices: bool = False  # scheduled_charges_on_usage_invoices: "ALL"
    transition: Transition | None = None

    def statement_schedule(self) -> Schedule:
        s = self.schedule
        return schedule_for(
            s.frequency, s.day, self.starting_at_us, self.ending_before_us, s.billing_anchor_us
        )

    subscriptions: tuple[NewSubscription, ...] = ()


@dataclass(frozen=True, slots=True)
class ContractRecord:
    id: str
    customer_id: str
    name: str | None
    rate_card_id: str
    starting_at_us: int
    ending_before_us: int | None
    schedule: StatementSchedule
    prioritization: str
    overrides: tuple[OverrideSpec, ...]
    custom_fields: dict[str, str]
    uniqueness_key: str | None
    created_at_us: int
    archived_at_us: int | None
    integration_fields: dict[str, Any] = field(default_factory=dict)
    scheduled_charges: tuple[ScheduledChargeRecord, ...] = ()
    charges_on_usage_invoices: bool = False
    recurring: tuple[RecurringSpec, ...] = ()
    thresholds: tuple[ThresholdConfig, ...] = ()
    subscriptions: tuple[SubscriptionRecord, ...] = ()
    transition: Transition | None = None  # the contract it took over from

    def statement_schedule(self) -> Schedule:
        s = self.schedule
        return schedule_for(
            s.frequency, s.day, self.starting_at_us, self.ending_before_us, s.billing_anchor_us
        )

    def terms(self) -> ContractTerms:
        return ContractTerms(
            id=self.id,
            customer_id=self.customer_id,
            rate_card_id=self.rate_card_id,
            starting_at_us=self.starting_at_us,
            ending_before_us=self.ending_before_us,
            frequency=self.schedule.frequency,
            anchor_day=self.schedule.day,
            billing_anchor_us=self.schedule.billing_anchor_us,
            explicit_override_priority=self.prioritization == EXPLICIT,
            overrides=tuple(t for o in self.overrides for t in o.terms()),
            subscriptions=tuple(s.terms() for s in self.subscriptions),
            archived_at_us=self.archived_at_us,
            scheduled_items=tuple(
                i for c in self.scheduled_charges if c.archived_at_us is None for i in c.items(self.id)
            ),
            charges_on_usage_invoices=self.charges_on_usage_invoices,
            thresholds=self.thresholds,
            recurring=self.recurring,
            transition_from_contract_id=None if self.transition is None else self.transition.from_contract_id,
            removes_trueups=self.transition is not None and self.transition.trueup == "REMOVE",
        )


def insert_contract(
    conn: Connection,
    new: NewContract,
    rate_card_id: str,
    created_at_us: int,
    subscriptions: Sequence[SubscriptionRecord] = (),
) -> str:
    """Store a contract that `services.contracts` has checked, with its checked subscriptions (its
    commits and credits are stored by `commits.insert_commit`); 409 if its uniqueness key is taken."""
    contract_id = new_id()
    row = _row(new, contract_id, rate_card_id, created_at_us)
    row["subscriptions"] = subscriptions_to_json(subscriptions)
    _insert(conn, row, new.uniqueness_key)
    return contract_id


def get_contract(conn: Connection, customer_id: str, contract_id: str) -> ContractRecord:
    found = _select(conn, contracts.c.id == contract_id, contracts.c.customer_id == customer_id)
    if not found:
        raise NotFound(f"contract_id: customer {customer_id} has no contract with id {contract_id}")
    return found[0]


def contract_owner(conn: Connection, contract_id: str) -> tuple[str, int | None] | None:
    """(customer id, archived_at_us) of the contract with this id, or None if there is none."""
    row = conn.execute(
        select(contracts.c.customer_id, contracts.c.archived_at_us).where(contracts.c.id == contract_id)
    ).first()
    return None if row is None else (row.customer_id, row.archived_at_us)


def list_contracts(
    conn: Connection,
    customer_id: str,
    *,
    covering_us: int | None = None,
    starting_at_us: int | None = None,
    include_archived: bool = False,
    after: tuple[int, str] | None = None,
    limit: int | None = None,
) -> list[ContractRecord]:
    """The customer's contracts by starting_at then id, after the (starting_at, id) `after`."""
    conditions: list[Any] = [contracts.c.customer_id == customer_id]
    if covering_us is not None:
        conditions.append(contracts.c.starting_at_us <= covering_us)
        conditions.append(
            or_(contracts.c.ending_before_us.is_(None), contracts.c.ending_before_us > covering_us)
        )
    if starting_at_us is not None:
        conditions.append(contracts.c.starting_at_us >= starting_at_us)
    if not include_archived:
        conditions.append(contracts.c.archived_at_us.is_(None))
    if after is not None:
        start, last_id = after
        conditions.append(
            or_(
                contracts.c.starting_at_us > start,
                and_(contracts.c.starting_at_us == start, contracts.c.id > last_id),
            )
        )
    return _select(conn, *conditions, limit=limit)


def mark_archived(conn: Connection, contract_id: str, archived_at_us: int) -> None:
    conn.execute(update(contracts).where(contracts.c.id == contract_id).values(archived_at_us=archived_at_us))


def set_ending_before(conn: Connection, contract_id: str, ending_before_us: int | None) -> None:
    """Move the contract's end (None: open-ended), as `services.end_dates` checked it."""
    conn.execute(
        update(contracts).where(contracts.c.id == contract_id).values(ending_before_us=ending_before_us)
    )


def rename(conn: Connection, contract_id: str, name: str | None) -> None:
    conn.execute(update(contracts).where(contracts.c.id == contract_id).values(name=name))


def set_integration_field(conn: Connection, contract_id: str, field_name: str, value: str | None) -> None:
    """Set (None: drop) one of the stored integration fields (`net_payment_terms_days`, ...)."""
    row = conn.execute(select(contracts.c.integration_fields).where(contracts.c.id == contract_id)).one()
    kept = {k: v for k, v in dict(row.integration_fields or {}).items() if k != field_name}
    if value is not None:
        kept[field_name] = value
    conn.execute(
        update(contracts).where(contracts.c.id == contract_id).values(integration_fields=kept or None)
    )


def add_terms(
    conn: Connection,
    contract_id: str,
    *,
    charges: Sequence[NewScheduledCharge] = (),
    recurring: Sequence[RecurringSpec] = (),
    thresholds: Sequence[ThresholdConfig] = (),
) -> None:
    """Append checked scheduled charges (given ids here), recurring commits (with theirs) and
    threshold billing configurations."""
    row = conn.execute(
        select(contracts.c.scheduled_charges, contracts.c.recurring, contracts.c.thresholds).where(
            contracts.c.id == contract_id
        )
    ).one()
    values: dict[str, Any] = {}
    if charges:
        values["scheduled_charges"] = [*(row.scheduled_charges or ()), *scheduled_charges.stored(charges)]
    if recurring:
        values["recurring"] = [*(row.recurring or ()), *(recurring_commits.to_json(r) for r in recurring)]
    if thresholds:
        values["thresholds"] = [*(row.thresholds or ()), *(threshold_configs.to_json(t) for t in thresholds)]
    if values:
        conn.execute(update(contracts).where(contracts.c.id == contract_id).values(**values))


def set_recurring(conn: Connection, contract_id: str, specs: Sequence[RecurringSpec]) -> None:
    """The contract's recurring commits and credits as an edit left them."""
    stored = [recurring_commits.to_json(r) for r in specs] or None
    conn.execute(update(contracts).where(contracts.c.id == contract_id).values(recurring=stored))


def set_overrides(conn: Connection, contract_id: str, overrides: Sequence[OverrideSpec]) -> None:
    """The contract's overrides as an edit left them (checked by `services.contracts.check_overrides`)."""
    stored = json.dumps([_override_json(o) for o in overrides], separators=(",", ":"))
    conn.execute(update(contracts).where(contracts.c.id == contract_id).values(overrides=stored))


def set_charge_schedule(conn: Connection, contract_id: str, charge_id: str, schedule: dict[str, Any]) -> None:
    """One scheduled charge's schedule as an edit left it (stored as `commits.stored_schedule`)."""
    row = conn.execute(select(contracts.c.scheduled_charges).where(contracts.c.id == contract_id)).one()
    kept = [{**c, "schedule": schedule} if c["id"] == charge_id else c for c in row.scheduled_charges or ()]
    conn.execute(update(contracts).where(contracts.c.id == contract_id).values(scheduled_charges=kept))


def archive_scheduled_charges(
    conn: Connection, contract_id: str, charge_ids: Sequence[str], at_us: int
) -> None:
    row = conn.execute(select(contracts.c.scheduled_charges).where(contracts.c.id == contract_id)).one()
    kept = scheduled_charges.archived(row.scheduled_charges, charge_ids, at_us)
    conn.execute(update(contracts).where(contracts.c.id == contract_id).values(scheduled_charges=kept))


def successor_of(conn: Connection, contract_id: str) -> str | None:
    """The contract that took over from this one, if one did (archived or not)."""
    query = select(contracts.c.id).where(contracts.c.transition_from_contract_id == contract_id)
    return conn.execute(query).scalar()


def transitions_of(conn: Connection, found: Sequence[ContractRecord]) -> dict[str, list[TransitionRecord]]:
    """Each contract's transitions: from the one it took over from, and to the one that took over
    from it, in time order."""
    ids = [c.id for c in found]
    shown: dict[str, list[TransitionRecord]] = {contract_id: [] for contract_id in ids}
    for c in found:
        if c.transition is not None:
            shown[c.id].append(TransitionRecord(c.transition.from_contract_id, c.id, c.transition.type))
    if ids:
        query = select(contracts.c.id, contracts.c.transition_from_contract_id, contracts.c.transition_type)
        for row in conn.execute(query.where(contracts.c.transition_from_contract_id.in_(ids))):
            shown[row.transition_from_contract_id].append(
                TransitionRecord(row.transition_from_contract_id, row.id, row.transition_type)
            )
    return shown


def contracts_for_customer(conn: Connection, customer_id: str) -> list[ContractTerms]:
    """The customer's contracts not archived, by starting_at then id: what the engine bills."""
    found = _select(conn, contracts.c.customer_id == customer_id, contracts.c.archived_at_us.is_(None))
    return [c.terms() for c in found]


def contracts_for_customers(conn: Connection, customer_ids: Sequence[str]) -> dict[str, list[ContractTerms]]:
    """`contracts_for_customer` of many customers in one statement per chunk (the evaluator's batch)."""
    return grouped_by_customer(
        customer_ids,
        lambda chunk: (
            (r.customer_id, r.terms())
            for r in _select(
                conn, among(conn, contracts.c.customer_id, chunk), contracts.c.archived_at_us.is_(None)
            )
        ),
    )


def has_finalized_invoices(conn: Connection, contract_id: str) -> bool:
    query = select(invoices.c.id).where(
        invoices.c.contract_id == contract_id, invoices.c.finalized_at_us.is_not(None)
    )
    return conn.execute(query.limit(1)).first() is not None


def _insert(conn: Connection, row: dict[str, Any], uniqueness_key: str | None) -> None:
    if uniqueness_key is not None:
        used = conn.execute(select(contracts.c.id).where(contracts.c.uniqueness_key == uniqueness_key))
        if used.first() is not None:
            raise Conflict(KEY_USED)
    try:
        with conn.begin_nested():
            conn.execute(contracts.insert().values(**row))
    except IntegrityError:
        # Another request took the uniqueness key, or the contract to take over from, between
        # our check and our insert.
        taken = row["transition_from_contract_id"]
        if taken is not None and successor_of(conn, taken) is not None:
            raise Conflict(f"transition.from_contract_id: contract {taken} was already taken over") from None
        raise Conflict(KEY_USED) from None


def _row(new: NewContract, contract_id: str, rate_card_id: str, created_at_us: int) -> dict[str, Any]:
    return {
        "id": contract_id,
        "customer_id": new.customer_id,
        "name": new.name,
        "rate_card_id": rate_card_id,
        "starting_at_us": new.starting_at_us,
        "ending_before_us": new.ending_before_us,
        "schedule_frequency": new.schedule.frequency.value,
        "schedule_day": new.schedule.day.value,
        "billing_anchor_us": new.schedule.billing_anchor_us,
        "multiplier_override_prioritization": new.prioritization,
        "overrides": json.dumps([_override_json(o) for o in new.overrides], separators=(",", ":")),
        "custom_fields": new.custom_fields,
        "uniqueness_key": new.uniqueness_key,
        "created_at_us": created_at_us,
        "integration_fields": new.integration_fields,
        "scheduled_charges": scheduled_charges.stored(new.scheduled_charges),
        "scheduled_charges_on_usage_invoices": ON_USAGE_INVOICES if new.charges_on_usage_invoices else None,
        "recurring": [recurring_commits.to_json(r) for r in new.recurring] or None,
        "thresholds": [threshold_configs.to_json(t) for t in new.thresholds] or None,
        "transition_from_contract_id": None if new.transition is None else new.transition.from_contract_id,
        "transition_type": None if new.transition is None else new.transition.type,
        "transition_trueup": None if new.transition is None else new.transition.trueup,
    }


def _override_json(o: OverrideSpec) -> dict[str, Any]:
    rate = o.overwrite_rate
    return {
        "id": o.id,
        "type": o.type,
        "starting_at_us": o.starting_at_us,
        "ending_before_us": o.ending_before_us,
        "product_id": o.product_id,
        "applicable_product_tags": list(o.applicable_product_tags),
        "override_specifiers": [
            {
                "product_id": t.product_id,
                "product_tags": list(t.product_tags),
                "pricing_group_values": dict(t.pricing_group_values) if t.pricing_group_values else None,
                "billing_frequency": t.billing_frequency,
            }
            for t in o.specifiers
        ],
        "multiplier": _text(o.multiplier),
        "overwrite_rate": None
        if rate is None
        else {
            "rate_type": rate.rate_type,
            "price": _text(rate.price),
            "tiers": None
            if rate.tiers is None
            else [{"price": _text(t.price), "size": _text(t.size)} for t in rate.tiers],
            "credit_type_id": rate.credit_type_id,
        },
        "priority": _text(o.priority),
        "entitled": o.entitled,
        "created_at_us": o.created_at_us,
    }


def _override_from_json(stored: dict[str, Any]) -> OverrideSpec:
    rate = stored["overwrite_rate"]
    return OverrideSpec(
        id=stored["id"],
        type=stored["type"],
        starting_at_us=stored["starting_at_us"],
        ending_before_us=stored["ending_before_us"],
        product_id=stored["product_id"],
        applicable_product_tags=tuple(stored["applicable_product_tags"]),
        specifiers=tuple(
            OverrideTarget(
                t["product_id"],
                tuple(t["product_tags"]),
                t["pricing_group_values"],
                t.get("billing_frequency"),
            )
            for t in stored["override_specifiers"]
        ),
        multiplier=_decimal(stored["multiplier"]),
        overwrite_rate=None
        if rate is None
        else OverwriteRate(
            rate_type=rate["rate_type"],
            price=_decimal(rate["price"]),
            tiers=None
            if rate["tiers"] is None
            else tuple(Tier(Decimal(t["price"]), _decimal(t["size"])) for t in rate["tiers"]),
            credit_type_id=rate["credit_type_id"],
        ),
        priority=_decimal(stored["priority"]),
        entitled=stored["entitled"],
        created_at_us=stored.get("created_at_us"),
    )


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _select(conn: Connection, *conditions: Any, limit: int | None = None) -> list[ContractRecord]:
    query = select(contracts).where(*conditions).order_by(contracts.c.starting_at_us, contracts.c.id)
    if limit is not None:
        query = query.limit(limit)
    return [_record(row) for row in conn.execute(query).mappings()]


def _record(row: Any) -> ContractRecord:
    return ContractRecord(
        id=row["id"],
        customer_id=row["customer_id"],
        name=row["name"],
        rate_card_id=row["rate_card_id"],
        starting_at_us=row["starting_at_us"],
        ending_before_us=row["ending_before_us"],
        schedule=StatementSchedule(
            Frequency(row["schedule_frequency"]), AnchorDay(row["schedule_day"]), row["billing_anchor_us"]
        ),
        prioritization=row["multiplier_override_prioritization"],
        overrides=tuple(_override_from_json(o) for o in json.loads(row["overrides"])),
        custom_fields=dict(row["custom_fields"] or {}),
        uniqueness_key=row["uniqueness_key"],
        created_at_us=row["created_at_us"],
        archived_at_us=row["archived_at_us"],
        integration_fields=dict(row["integration_fields"] or {}),
        scheduled_charges=scheduled_charges.records(row["scheduled_charges"]),
        charges_on_usage_invoices=row["scheduled_charges_on_usage_invoices"] == ON_USAGE_INVOICES,
        recurring=tuple(recurring_commits.from_json(r) for r in row["recurring"] or ()),
        thresholds=tuple(threshold_configs.from_json(t) for t in row["thresholds"] or ()),
        subscriptions=tuple(subscriptions_from_json(row["subscriptions"])),
        transition=None
        if row["transition_from_contract_id"] is None
        else Transition(row["transition_from_contract_id"], row["transition_type"], row["transition_trueup"]),
    )
