"""A contract's scheduled charges: FIXED products billed on their schedule's dates.

They are stored with their contract (its `scheduled_charges` column), since they only ever change
with it: each charge and each of its schedule items gets an id when the contract is created, and
the items are what the engine bills (`engine.scheduled_billing`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from meterline.domain.commit_rules import InvoiceSchedule
from meterline.domain.ids import new_id
from meterline.domain.scheduled_items import SCHEDULED, ScheduledItem
from meterline.store.commits import InvoiceScheduleRecord, new_schedule, schedule_record


@dataclass(frozen=True, slots=True)
class NewScheduledCharge:
    product_id: str
    schedule: InvoiceSchedule
    name: str | None = None
    custom_fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScheduledChargeRecord:
    id: str
    product_id: str
    name: str | None
    custom_fields: dict[str, str]
    schedule: InvoiceScheduleRecord
    archived_at_us: int | None = None  # archived: billed no more (v2 contracts/edit)

    def items(self, contract_id: str) -> tuple[ScheduledItem, ...]:
        return self.schedule.scheduled_items(
            SCHEDULED,
            self.id,
            contract_id,
            self.product_id,
            name=self.name,
            custom_fields=self.custom_fields,
        )


def stored(charges: Sequence[NewScheduledCharge]) -> list[dict[str, Any]]:
    """New charges as their contract stores them, with ids."""
    return [
        {
            "id": new_id(),
            "product_id": charge.product_id,
            "name": charge.name,
            "custom_fields": charge.custom_fields,
            "schedule": new_schedule(charge.schedule),
        }
        for charge in charges
    ]


def archived(
    stored_charges: list[dict[str, Any]] | None, charge_ids: Sequence[str], at_us: int
) -> list[dict[str, Any]]:
    """The stored charges with these archived at `at_us` (those archived already keep their time)."""
    wanted = set(charge_ids)
    return [
        {**c, "archived_at_us": at_us} if c["id"] in wanted and c.get("archived_at_us") is None else c
        for c in stored_charges or ()
    ]


def records(stored_charges: list[dict[str, Any]] | None) -> tuple[ScheduledChargeRecord, ...]:
    found: list[ScheduledChargeRecord] = []
    for charge in stored_charges or ():
        schedule = schedule_record(charge["schedule"])
        assert schedule is not None
        found.append(
            ScheduledChargeRecord(
                charge["id"],
                charge["product_id"],
                charge["name"],
                dict(charge["custom_fields"]),
                schedule,
                charge.get("archived_at_us"),
            )
        )
    return tuple(found)
