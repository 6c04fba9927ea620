"""Editing a commit's or credit's access and invoice schedules (v2 contracts/edit `update_commits`,
`update_credits`): items added, removed and changed by id, and what a finalized invoice fixed.

An access item a finalized invoice drew from keeps its start, keeps its end at or after the end of
the last such invoice, and grants at least what those invoices drew; it is never removed. An
invoice schedule item that an invoice billed (finalized or voided: a voided one's item is never
billed again) neither changes nor goes. Everything else changes freely; the schedules that result
then meet the rules of a new commit (`domain.commit_rules`). Errors name the request field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from meterline.domain.commit_rules import AccessItem, InvoiceItem, field_path, invoice_item
from meterline.domain.contracts import AccessSegment
from meterline.domain.errors import InvalidInput
from meterline.domain.ids import new_id
from meterline.domain.timeutil import format_rfc3339


@dataclass(frozen=True, slots=True)
class SegmentChange:
    """`update_schedule_items` of an access schedule: what is given changes."""

    id: str
    amount: Decimal | None = None
    starting_at_us: int | None = None
    ending_before_us: int | None = None


@dataclass(frozen=True, slots=True)
class ItemChange:
    """`update_schedule_items` of an invoice schedule: what is given changes."""

    id: str
    timestamp_us: int | None = None
    amount: Decimal | None = None
    unit_price: Decimal | None = None
    quantity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class AccessEdit:
    """An access schedule's `add_schedule_items`, `remove_schedule_items` (ids), `update_schedule_items`."""

    add: tuple[AccessItem, ...] = ()
    remove: tuple[str, ...] = ()
    update: tuple[SegmentChange, ...] = ()


@dataclass(frozen=True, slots=True)
class InvoiceEdit:
    """An invoice schedule's `add_schedule_items`, `remove_schedule_items` (ids), `update_schedule_items`."""

    add: tuple[InvoiceItem, ...] = ()
    remove: tuple[str, ...] = ()
    update: tuple[ItemChange, ...] = ()


@dataclass(frozen=True, slots=True)
class Drawn:
    """What finalized invoices drew from one access item, and the end of the last of them."""

    amount: Decimal
    until_us: int


def edited_access(
    segments: Sequence[AccessSegment], edit: AccessEdit, drawn: Mapping[str, Drawn], path: str
) -> tuple[AccessSegment, ...]:
    """The access items after `edit` (ids kept, new ones given theirs), by start."""
    where = field_path(path, "access_schedule")
    by_id = {s.id: s for s in segments}
    for index, segment_id in enumerate(edit.remove):
        at = field_path(where, "remove_schedule_items", index, "id")
        if by_id.pop(segment_id, None) is None:
            raise InvalidInput(f"{at}: the access schedule has no item {segment_id}")
        if segment_id in drawn:
            raise InvalidInput(
                f"{at}: finalized invoices drew {drawn[segment_id].amount} from item {segment_id}; "
                "it may not be removed"
            )
    for index, change in enumerate(edit.update):
        at = field_path(where, "update_schedule_items", index)
        found = by_id.get(change.id)
        if found is None:
            raise InvalidInput(f"{field_path(at, 'id')}: the access schedule has no item {change.id}")
        by_id[found.id] = _changed_segment(found, change, drawn.get(found.id), at)
    added = []
    for index, item in enumerate(edit.add):
        if item.ending_before_us <= item.starting_at_us:
            at = field_path(where, "add_schedule_items", index, "ending_before")
            raise InvalidInput(f"{at}: must be after starting_at")
        added.append(AccessSegment(new_id(), item.amount, item.starting_at_us, item.ending_before_us))
    return tuple(sorted([*by_id.values(), *added], key=lambda s: (s.starting_at_us, s.ending_before_us)))


def _changed_segment(
    found: AccessSegment, change: SegmentChange, drawn: Drawn | None, at: str
) -> AccessSegment:
    start = found.starting_at_us if change.starting_at_us is None else change.starting_at_us
    end = found.ending_before_us if change.ending_before_us is None else change.ending_before_us
    amount = found.amount if change.amount is None else change.amount
    if end <= start:
        raise InvalidInput(f"{field_path(at, 'ending_before')}: must be after starting_at")
    if drawn is not None:
        if start != found.starting_at_us:
            raise InvalidInput(
                f"{field_path(at, 'starting_at')}: a finalized invoice drew from item {found.id}; "
                "its start may not move"
            )
        if end < drawn.until_us:
            raise InvalidInput(
                f"{field_path(at, 'ending_before')}: a finalized invoice drew from item {found.id} "
                f"until {format_rfc3339(drawn.until_us)}; its end may not move before that"
            )
        if amount < drawn.amount:
            raise InvalidInput(
                f"{field_path(at, 'amount')}: finalized invoices drew {drawn.amount} from item "
                f"{found.id}; it may not grant less"
            )
    return replace(found, amount=amount, starting_at_us=start, ending_before_us=end)


def edited_invoice_items(
    items: Sequence[tuple[str, InvoiceItem]], edit: InvoiceEdit, billed: Mapping[str, str], path: str
) -> list[tuple[str, InvoiceItem]]:
    """(id, item) of the invoice schedule after `edit` (new items given ids), by date."""
    where = field_path(path, "invoice_schedule")
    by_id = dict(items)
    for index, item_id in enumerate(edit.remove):
        at = field_path(where, "remove_schedule_items", index, "id")
        if by_id.pop(item_id, None) is None:
            raise InvalidInput(f"{at}: the invoice schedule has no item {item_id}")
        _check_unbilled(item_id, billed, at)
    for index, change in enumerate(edit.update):
        at = field_path(where, "update_schedule_items", index)
        found = by_id.get(change.id)
        if found is None:
            raise InvalidInput(f"{field_path(at, 'id')}: the invoice schedule has no item {change.id}")
        _check_unbilled(change.id, billed, at)
        by_id[change.id] = _changed_item(found, change, at)
    kept = [*by_id.items(), *((new_id(), item) for item in edit.add)]
    return sorted(kept, key=lambda pair: pair[1].timestamp_us)


def _changed_item(found: InvoiceItem, change: ItemChange, at: str) -> InvoiceItem:
    timestamp = found.timestamp_us if change.timestamp_us is None else change.timestamp_us
    if change.amount is not None:
        return invoice_item(timestamp, change.amount, change.unit_price, change.quantity, at)
    if change.unit_price is not None or change.quantity is not None:
        unit_price = found.unit_price if change.unit_price is None else change.unit_price
        quantity = found.quantity if change.quantity is None else change.quantity
        return invoice_item(timestamp, None, unit_price, quantity, at)
    return replace(found, timestamp_us=timestamp)


def _check_unbilled(item_id: str, billed: Mapping[str, str], at: str) -> None:
    if item_id in billed:
        raise InvalidInput(f"{at}: invoice {billed[item_id]} billed item {item_id}; it may not change")
