"""A contract's subscriptions, kept with the contract (`contracts.subscriptions`, JSON).

A subscription is stored as created, with every quantity change in the order it was made
(`domain.subscriptions` applies them); an edit rewrites the list under the contract's row lock,
so two edits of one contract never lose each other's changes. Decimals are kept as text, exact.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select, update

from meterline.domain.errors import NotFound
from meterline.domain.subscriptions import (
    ON_USAGE_INVOICE,
    ProrationRounding,
    QuantityChange,
    SeatChange,
    SubscriptionTerms,
)
from meterline.store.tables import contracts


@dataclass(frozen=True, slots=True)
class NewSubscription:
    product_id: str
    billing_frequency: str
    collection_schedule: str
    invoice_behavior: str
    is_prorated: bool
    initial_quantity: Decimal | None  # None: SEAT_BASED, its quantity is its seats
    starting_at_us: int | None = None  # None: the contract's start
    ending_before_us: int | None = None  # None: the contract's end
    rounding: ProrationRounding | None = None
    name: str | None = None
    description: str | None = None
    custom_fields: dict[str, str] | None = None
    seat_group_key: str | None = None  # set: SEAT_BASED
    initial_seat_ids: tuple[str, ...] = ()
    initial_unassigned: int = 0
    temporary_id: str | None = None  # names it for recurring commits of the same request
    anchor_us: int | None = None  # billing_cycle_config.anchor_date (None: the contract's anchor)
    invoice_placement: str = ON_USAGE_INVOICE


@dataclass(frozen=True, slots=True)
class QuantityChangeRecord:
    change: QuantityChange
    created_at_us: int


@dataclass(frozen=True, slots=True)
class SeatChangeRecord:
    change: SeatChange
    created_at_us: int


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    id: str
    product_id: str
    billing_frequency: str
    collection_schedule: str
    invoice_behavior: str
    is_prorated: bool
    starting_at_us: int
    ending_before_us: int | None
    changes: tuple[QuantityChangeRecord, ...]  # the initial quantity first
    created_at_us: int
    rounding: ProrationRounding | None = None
    name: str | None = None
    description: str | None = None
    custom_fields: dict[str, str] = field(default_factory=dict)
    seat_group_key: str | None = None  # set: SEAT_BASED, its quantity its seats (`seat_changes`)
    seat_changes: tuple[SeatChangeRecord, ...] = ()
    anchor_us: int | None = None  # its billing cycle's own anchor (None: the contract's)
    invoice_placement: str = ON_USAGE_INVOICE

    @property
    def seat_based(self) -> bool:
        return self.seat_group_key is not None

    def terms(self) -> SubscriptionTerms:
        return SubscriptionTerms(
            id=self.id,
            product_id=self.product_id,
            billing_frequency=self.billing_frequency,
            collection_schedule=self.collection_schedule,
            is_prorated=self.is_prorated,
            starting_at_us=self.starting_at_us,
            ending_before_us=self.ending_before_us,
            changes=tuple(c.change for c in self.changes),
            rounding=self.rounding,
            name=self.name,
            custom_fields=self.custom_fields,
            seat_changes=tuple(c.change for c in self.seat_changes),
            invoice_behavior=self.invoice_behavior,
            seat_group_key=self.seat_group_key,
            anchor_us=self.anchor_us,
            invoice_placement=self.invoice_placement,
        )


def subscriptions_of(
    conn: Connection, contract_id: str, *, for_update: bool = False
) -> list[SubscriptionRecord]:
    query = select(contracts.c.subscriptions).where(contracts.c.id == contract_id)
    if for_update:
        query = query.with_for_update()
    text = conn.execute(query).scalar()
    if text is None:
        raise NotFound(f"contract_id: no contract with id {contract_id}")
    return from_json(text)


def set_subscriptions(conn: Connection, contract_id: str, records: Sequence[SubscriptionRecord]) -> None:
    conn.execute(
        update(contracts).where(contracts.c.id == contract_id).values(subscriptions=to_json(records))
    )


def to_json(records: Sequence[SubscriptionRecord]) -> str:
    return json.dumps([_record_json(r) for r in records], separators=(",", ":"))


def from_json(text: str) -> list[SubscriptionRecord]:
    return [_record(stored) for stored in json.loads(text or "[]")]


def _record_json(r: SubscriptionRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "product_id": r.product_id,
        "billing_frequency": r.billing_frequency,
        "collection_schedule": r.collection_schedule,
        "invoice_behavior": r.invoice_behavior,
        "is_prorated": r.is_prorated,
        "rounding": None
        if r.rounding is None
        else {"decimal_places": r.rounding.decimal_places, "rounding_method": r.rounding.method},
        "starting_at_us": r.starting_at_us,
        "ending_before_us": r.ending_before_us,
        "changes": [
            {
                "starting_at_us": c.change.starting_at_us,
                "quantity": _text(c.change.quantity),
                "delta": _text(c.change.delta),
                "created_at_us": c.created_at_us,
            }
            for c in r.changes
        ],
        "created_at_us": r.created_at_us,
        "name": r.name,
        "description": r.description,
        "custom_fields": r.custom_fields,
        "seat_group_key": r.seat_group_key,
        "seat_changes": [
            {
                "starting_at_us": c.change.starting_at_us,
                "add_seat_ids": list(c.change.add_seat_ids),
                "remove_seat_ids": list(c.change.remove_seat_ids),
                "add_unassigned": c.change.add_unassigned,
                "remove_unassigned": c.change.remove_unassigned,
                "created_at_us": c.created_at_us,
            }
            for c in r.seat_changes
        ],
        "anchor_us": r.anchor_us,
        "invoice_placement": r.invoice_placement,
    }


def _record(stored: dict[str, Any]) -> SubscriptionRecord:
    rounding = stored["rounding"]
    return SubscriptionRecord(
        id=stored["id"],
        product_id=stored["product_id"],
        billing_frequency=stored["billing_frequency"],
        collection_schedule=stored["collection_schedule"],
        invoice_behavior=stored["invoice_behavior"],
        is_prorated=stored["is_prorated"],
        rounding=None
        if rounding is None
        else ProrationRounding(rounding["decimal_places"], rounding["rounding_method"]),
        starting_at_us=stored["starting_at_us"],
        ending_before_us=stored["ending_before_us"],
        changes=tuple(
            QuantityChangeRecord(
                QuantityChange(c["starting_at_us"], _decimal(c["quantity"]), _decimal(c["delta"])),
                c["created_at_us"],
            )
            for c in stored["changes"]
        ),
        created_at_us=stored["created_at_us"],
        name=stored["name"],
        description=stored["description"],
        custom_fields=dict(stored["custom_fields"] or {}),
        seat_group_key=stored["seat_group_key"],
        seat_changes=tuple(
            SeatChangeRecord(
                SeatChange(
                    c["starting_at_us"],
                    tuple(c["add_seat_ids"]),
                    tuple(c["remove_seat_ids"]),
                    c["add_unassigned"],
                    c["remove_unassigned"],
                ),
                c["created_at_us"],
            )
            for c in stored["seat_changes"]
        ),
        anchor_us=stored.get("anchor_us"),
        invoice_placement=stored.get("invoice_placement", ON_USAGE_INVOICE),
    )


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)
