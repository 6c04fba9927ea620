"""Contracts: a customer's rate card over a time range, its usage statement schedule, overrides,
and the commits and credits created with it (store/commits.py keeps those).

A contract never changes once created (meterline has no amendments or edits yet), except that it
may be archived. Archiving takes the contract and its commits out of billing, but they stay
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
from meterline.domain.commit_rules import field_path
from meterline.domain.contract_rules import (
    EXPLICIT,
    LOWEST_MULTIPLIER,
    check_contract_span,
    check_statement_anchor,
)
from meterline.domain.contracts import ContractTerms
from meterline.domain.errors import Conflict, InvalidInput, NotFound
from meterline.domain.ids import new_id
from meterline.domain.override_rules import OverrideSpec, OverrideTarget, OverwriteRate, check_override
from meterline.domain.pricing import Tier
from meterline.domain.timeutil import now_us
from meterline.store import commits, credit_types, customers, products, rate_cards
from meterline.store.commits import KEY_USED, NewCommit
from meterline.store.rate_cards import RateCardRecord
from meterline.store.sql import among, grouped_by_customer
from meterline.store.tables import contracts, invoices


@dataclass(frozen=True, slots=True)
class StatementSchedule:
    frequency: Frequency = Frequency.MONTHLY
    day: AnchorDay = AnchorDay.FIRST_OF_MONTH
    billing_anchor_us: int | None = None  # CUSTOM_DATE only


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
    custom_fields: dict[str, str] = field(default_factory=dict)
    uniqueness_key: str | None = None


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
            archived_at_us=self.archived_at_us,
        )


def create_contract(conn: Connection, new: NewContract) -> str:
    """Validate and store a contract with its commits and credits, all or nothing."""
    customers.active_customer(conn, new.customer_id)
    check_contract_span(new.starting_at_us, new.ending_before_us)
    check_statement_anchor(new.schedule.day, new.schedule.billing_anchor_us)
    card = _rate_card(conn, new)
    _check_overrides(conn, new.overrides, card, new.prioritization == EXPLICIT)
    contract_id = new_id()
    created = now_us()
    _insert(conn, _row(new, contract_id, card.id, created), new.uniqueness_key)
    # One microsecond apart, so that commits and credits list in the order they were given.
    for index, commit in enumerate(new.commits):
        commits.create_commit(
            conn,
            new.customer_id,
            commit,
            contract_id=contract_id,
            path=f"commits.{index}",
            created_at_us=created + index,
        )
    for index, credit in enumerate(new.credits):
        commits.create_commit(
            conn,
            new.customer_id,
            credit,
            contract_id=contract_id,
            path=f"credits.{index}",
            created_at_us=created + len(new.commits) + index,
        )
    return contract_id


def get_contract(conn: Connection, customer_id: str, contract_id: str) -> ContractRecord:
    found = _select(conn, contracts.c.id == contract_id, contracts.c.customer_id == customer_id)
    if not found:
        raise NotFound(f"contract_id: customer {customer_id} has no contract with id {contract_id}")
    return found[0]


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


def archive_contract(conn: Connection, customer_id: str, contract_id: str, *, void_invoices: bool) -> None:
    contract = get_contract(conn, customer_id, contract_id)
    if contract.archived_at_us is not None:
        return
    if void_invoices and _has_finalized_invoices(conn, contract_id):
        raise InvalidInput(
            "void_invoices: the contract has finalized invoices and meterline cannot void invoices yet; "
            "archive it with void_invoices false to keep them"
        )
    conn.execute(update(contracts).where(contracts.c.id == contract_id).values(archived_at_us=now_us()))


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
    return rate_cards.active_rate_card(conn, rate_card_id)


def _check_overrides(
    conn: Connection, overrides: Sequence[OverrideSpec], card: RateCardRecord, explicit: bool
) -> None:
    for index, override in enumerate(overrides):
        path = f"overrides.{index}"
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


def _has_finalized_invoices(conn: Connection, contract_id: str) -> bool:
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
        # Another request took the uniqueness key between our check and our insert.
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
            OverrideTarget(t["product_id"], tuple(t["product_tags"]), t["pricing_group_values"])
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
    )
