"""What one request changed in a contract, in the fields of an edit of Metronome's v2
contracts/getEditHistory: `add_*` (what it added, as the contract shows it), `update_*` (only what
changed of each object, by id), `archive_*` and `remove_overrides` (by id), and the contract's
`update_contract_end_date` and `update_contract_name`.

It compares the contract as the SDK's ContractV2 shows it before and after the request (and the
subscriptions' records, whose quantity and seat changes that view folds into schedules). So every
path that changes a contract yields its edit the same way, whether it is v2 contracts/edit or a v1
end-date update, and an edit shows what was applied, not what was asked. Commits and credits that
meterline makes itself (a recurring commit's periods, rollovers) are not edits of the contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from meterline.domain.subscriptions import QuantityChange, SeatChange
from meterline.domain.threshold_billing import FIELDS
from meterline.domain.timeutil import format_rfc3339
from meterline.store.subscriptions import SubscriptionRecord

Json = dict[str, Any]

# The fields each added object has in the SDK's ContractGetEditHistoryResponse (its Data.add_*).
_SCOPE = ("applicable_product_ids", "applicable_product_tags", "specifiers")
_ADDED_CREDIT = (
    "id",
    "product",
    "type",
    "access_schedule",
    *_SCOPE,
    "description",
    "hierarchy_configuration",
    "name",
    "netsuite_sales_order_id",
    "priority",
    "rate_type",
    "rollover_fraction",
    "salesforce_opportunity_id",
)
_ADDED = {
    "commits": (*_ADDED_CREDIT, "invoice_schedule"),
    "credits": _ADDED_CREDIT,
    "scheduled_charges": ("id", "product", "schedule", "name", "netsuite_sales_order_id"),
    "overrides": (
        "id",
        "created_at",
        "starting_at",
        "applicable_product_tags",
        "ending_before",
        "entitled",
        "is_commit_specific",
        "multiplier",
        "override_specifiers",
        "override_tiers",
        "overwrite_rate",
        "priority",
        "product",
        "target",
        "type",
    ),
    "recurring": (
        "id",
        "access_amount",
        "anchor_date",
        "commit_duration",
        "priority",
        "product",
        "rate_type",
        "starting_at",
        *_SCOPE,
        "contract",
        "description",
        "ending_before",
        "hierarchy_configuration",
        "invoice_amount",
        "name",
        "netsuite_sales_order_id",
        "proration",
        "proration_rounding",
        "recurrence_frequency",
        "rollover_fraction",
        "subscription_config",
    ),
    "subscriptions": (
        "billing_periods",
        "collection_schedule",
        "created_at",
        "proration",
        "quantity_management_mode",
        "quantity_schedule",
        "starting_at",
        "subscription_rate",
        "id",
        "billing_cycle_config",
        "custom_credit_type_id",
        "custom_fields",
        "description",
        "ending_before",
        "fiat_credit_type_id",
        "name",
        "product_custom_fields",
        "seat_config",
    ),
}
# What an update of each shows when it changed (schedule items are compared item by item).
_ACCESS_ITEM = ("amount", "starting_at", "ending_before")
_INVOICE_ITEM = ("amount", "quantity", "timestamp", "unit_price")
_COMMIT_DETAILS = ("applicable_product_ids", "applicable_product_tags", "description", "name", "priority")
# The SDK's history holds a commit's new specifiers (v2 contracts/commits/edit), not a credit's.
_UPDATED_DETAILS = {"commits": (*_COMMIT_DETAILS, "specifiers"), "credits": _COMMIT_DETAILS}
_RECURRING_AMOUNTS = ("access_amount", "invoice_amount")
_RECURRING_TERMS = ("ending_before", "proration_rounding")
# Made by meterline, not by an edit: a recurring commit's period commits, rollover commits.
_GENERATED_MARKS = ("recurring_commit_id", "recurring_credit_id", "rolled_over_from")


def edit_parts(
    before: Json,
    after: Json,
    subscriptions_before: Sequence[SubscriptionRecord],
    subscriptions_after: Sequence[SubscriptionRecord],
) -> Json:
    """The edit that turned `before` into `after` (two ContractV2 views); empty if nothing changed."""
    parts: Json = {}
    if before.get("ending_before") != after.get("ending_before"):
        parts["update_contract_end_date"] = after.get("ending_before")  # None: open-ended now
    if before.get("name") != after.get("name"):
        parts["update_contract_name"] = after.get("name")
    for field in ("commits", "credits"):
        _commit_changes(parts, field, before.get(field, []), after.get(field, []))
    _charge_changes(parts, before["scheduled_charges"], after["scheduled_charges"])
    _override_changes(parts, before["overrides"], after["overrides"])
    for field in ("recurring_commits", "recurring_credits"):
        _recurring_changes(parts, field, before.get(field, []), after.get(field, []))
    _subscription_changes(parts, before, after, subscriptions_before, subscriptions_after)
    for field in FIELDS.values():
        if field in after and field not in before:
            parts[f"add_{field}"] = after[field]
    return parts


def _commit_changes(parts: Json, field: str, before: list[Json], after: list[Json]) -> None:
    was = _by_id(before)
    added, updated, archived = [], [], []
    for shown in after:
        if any(mark in shown for mark in _GENERATED_MARKS):
            continue
        old = was.get(shown["id"])
        if old is None:
            added.append(_only(shown, _ADDED[field]))
        elif "archived_at" in shown and "archived_at" not in old:
            archived.append({"id": shown["id"]})
        else:
            change = _commit_update(old, shown, _UPDATED_DETAILS[field])
            if change:
                updated.append({"id": shown["id"], **change})
    _put(parts, f"add_{field}", added)
    _put(parts, f"update_{field}", updated)
    _put(parts, f"archive_{field}", archived)


def _commit_update(old: Json, new: Json, details: Sequence[str]) -> Json:
    change: Json = {}
    access = _items_change(_items(old, "access_schedule"), _items(new, "access_schedule"), _ACCESS_ITEM)
    if access:
        change["access_schedule"] = access
    invoice = _items_change(_items(old, "invoice_schedule"), _items(new, "invoice_schedule"), _INVOICE_ITEM)
    if invoice:
        change["invoice_schedule"] = invoice
    change.update({k: new.get(k) for k in details if old.get(k) != new.get(k)})
    return change


def _charge_changes(parts: Json, before: list[Json], after: list[Json]) -> None:
    was = _by_id(before)
    added, updated, archived = [], [], []
    for shown in after:
        old = was.get(shown["id"])
        if old is None:
            added.append(_only(shown, _ADDED["scheduled_charges"]))
        elif "archived_at" in shown and "archived_at" not in old:
            archived.append({"id": shown["id"]})
        else:
            change: Json = {}
            items = _items_change(_items(old, "schedule"), _items(shown, "schedule"), _INVOICE_ITEM)
            if items:
                change["invoice_schedule"] = items
            if old.get("name") != shown.get("name"):
                change["name"] = shown.get("name")
            if change:
                updated.append({"id": shown["id"], **change})
    _put(parts, "add_scheduled_charges", added)
    _put(parts, "update_scheduled_charges", updated)
    _put(parts, "archive_scheduled_charges", archived)


def _override_changes(parts: Json, before: list[Json], after: list[Json]) -> None:
    was, now = _by_id(before), _by_id(after)
    _put(parts, "add_overrides", [_only(o, _ADDED["overrides"]) for o in after if o["id"] not in was])
    _put(parts, "remove_overrides", [{"id": o["id"]} for o in before if o["id"] not in now])


def _recurring_changes(parts: Json, field: str, before: list[Json], after: list[Json]) -> None:
    was = _by_id(before)
    added, updated = [], []
    for shown in after:
        old = was.get(shown["id"])
        if old is None:
            added.append(_only(shown, _ADDED["recurring"]))
            continue
        change: Json = {
            k: _only(shown.get(k) or {}, ("quantity", "unit_price"))
            for k in _RECURRING_AMOUNTS
            if old.get(k) != shown.get(k)
        }
        change.update({k: shown.get(k) for k in _RECURRING_TERMS if old.get(k) != shown.get(k)})
        if change:
            updated.append({"id": shown["id"], **change})
    _put(parts, f"add_{field}", added)
    _put(parts, f"update_{field}", updated)


def _subscription_changes(
    parts: Json,
    before: Json,
    after: Json,
    records_before: Sequence[SubscriptionRecord],
    records_after: Sequence[SubscriptionRecord],
) -> None:
    was, records = _by_id(before["subscriptions"]), {r.id: r for r in records_before}
    added, updated = [], []
    for shown, record in zip(after["subscriptions"], records_after, strict=True):
        old = was.get(shown["id"])
        if old is None:
            added.append(_only(shown, _ADDED["subscriptions"]))
            continue
        change: Json = {k: shown.get(k) for k in ("ending_before", "name") if old.get(k) != shown.get(k)}
        change.update(_quantity_updates(records[record.id], record))
        if change:
            updated.append({"id": shown["id"], **change})
    _put(parts, "add_subscriptions", added)
    _put(parts, "update_subscriptions", updated)


def _quantity_updates(old: SubscriptionRecord, new: SubscriptionRecord) -> Json:
    """The quantity and seat changes the request added to a subscription."""
    change: Json = {}
    quantities = [c.change for c in new.changes if c not in old.changes]
    if quantities:
        change["quantity_updates"] = [_quantity_view(q) for q in quantities]
    seats: dict[str, list[Json]] = {}
    for c in new.seat_changes:
        if c not in old.seat_changes:
            field, shown = _seat_view(c.change)
            seats.setdefault(field, []).append(shown)
    if seats:
        change["seat_updates"] = seats
    return change


def _quantity_view(change: QuantityChange) -> Json:
    if change.quantity is not None:
        return {"starting_at": format_rfc3339(change.starting_at_us), "quantity": change.quantity}
    return {"starting_at": format_rfc3339(change.starting_at_us), "quantity_delta": change.delta}


def _seat_view(change: SeatChange) -> tuple[str, Json]:
    at = format_rfc3339(change.starting_at_us)
    if change.add_seat_ids:
        return "add_seat_ids", {"seat_ids": list(change.add_seat_ids), "starting_at": at}
    if change.remove_seat_ids:
        return "remove_seat_ids", {"seat_ids": list(change.remove_seat_ids), "starting_at": at}
    if change.add_unassigned:
        return "add_unassigned_seats", {"quantity": change.add_unassigned, "starting_at": at}
    return "remove_unassigned_seats", {"quantity": change.remove_unassigned, "starting_at": at}


def _items_change(old_items: list[Json], new_items: list[Json], keys: Sequence[str]) -> Json:
    """Schedule items added (without ids: Metronome's add items have none), removed (by id) and
    updated (by id, with the fields that changed)."""
    was, now = _by_id(old_items), _by_id(new_items)
    updated = []
    for item in new_items:
        old = was.get(item["id"])
        if old is not None:
            changed = {k: item.get(k) for k in keys if old.get(k) != item.get(k)}
            if changed:
                updated.append({"id": item["id"], **changed})
    change = {
        "add_schedule_items": [_only(i, keys) for i in new_items if i["id"] not in was],
        "remove_schedule_items": [{"id": i["id"]} for i in old_items if i["id"] not in now],
        "update_schedule_items": updated,
    }
    return {k: v for k, v in change.items() if v}


def _items(shown: Json, schedule: str) -> list[Json]:
    items: list[Json] = (shown.get(schedule) or {}).get("schedule_items", [])
    return items


def _by_id(shown: list[Json]) -> dict[str, Json]:
    return {s["id"]: s for s in shown}


def _only(shown: Json, keys: Sequence[str]) -> Json:
    return {k: shown[k] for k in keys if k in shown}


def _put(parts: Json, field: str, items: list[Json]) -> None:
    if items:
        parts[field] = items
