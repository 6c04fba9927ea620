"""A contract's subscriptions as Metronome shows them (the SDK's `Subscription`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meterline.domain.contracts import ContractTerms
from meterline.domain.periods import Period
from meterline.domain.timeutil import format_rfc3339, now_us
from meterline.store.contracts import ContractRecord
from meterline.store.subscriptions import SubscriptionRecord


def subscription_views(contract: ContractRecord, product_names: Mapping[str, str]) -> list[dict[str, Any]]:
    now = now_us()
    return [_view(s, contract, product_names, now) for s in contract.subscriptions]


def _view(
    subscription: SubscriptionRecord, contract: ContractRecord, product_names: Mapping[str, str], now: int
) -> dict[str, Any]:
    proration: dict[str, Any] = {
        "invoice_behavior": subscription.invoice_behavior,
        "is_prorated": subscription.is_prorated,
    }
    if subscription.rounding is not None:
        proration["rounding"] = {
            "decimal_places": subscription.rounding.decimal_places,
            "rounding_method": subscription.rounding.method,
        }
    view: dict[str, Any] = {
        "id": subscription.id,
        "billing_periods": _billing_periods(subscription, contract.terms(), now),
        "collection_schedule": subscription.collection_schedule,
        "created_at": format_rfc3339(subscription.created_at_us),
        "proration": proration,
        "quantity_management_mode": "SEAT_BASED" if subscription.seat_based else "QUANTITY_ONLY",
        "quantity_schedule": _quantity_schedule(subscription, now),
        "starting_at": format_rfc3339(subscription.starting_at_us),
        "subscription_rate": {
            "billing_frequency": subscription.billing_frequency,
            "product": {
                "id": subscription.product_id,
                "name": product_names.get(subscription.product_id, ""),
            },
        },
        "custom_fields": subscription.custom_fields,
        "billing_cycle_config": {
            "anchor_date": format_rfc3339(
                contract.terms().subscription_schedule(subscription.terms()).anchor_us
            ),
            "invoice_placement": subscription.invoice_placement,
        },
    }
    # It ends with its contract at the latest (a contract's end may move before the subscription's).
    ends = [e for e in (subscription.ending_before_us, contract.ending_before_us) if e is not None]
    if ends:
        view["ending_before"] = format_rfc3339(min(ends))
    if subscription.name is not None:
        view["name"] = subscription.name
    if subscription.description is not None:
        view["description"] = subscription.description
    if subscription.seat_group_key is not None:
        view["seat_config"] = {"seat_group_key": subscription.seat_group_key}
    return view


def _quantity_schedule(subscription: SubscriptionRecord, now: int) -> list[dict[str, Any]]:
    """The quantity in force now and every later change (Metronome shows no past ones)."""
    schedule = subscription.terms().quantity_schedule()
    current = max((i for i, (at_us, _q) in enumerate(schedule) if at_us <= now), default=0)
    shown = schedule[current:]
    items = []
    for index, (at_us, quantity) in enumerate(shown):
        item: dict[str, Any] = {"quantity": quantity, "starting_at": format_rfc3339(at_us)}
        following = shown[index + 1][0] if index + 1 < len(shown) else subscription.ending_before_us
        if following is not None:
            item["ending_before"] = format_rfc3339(following)
        items.append(item)
    return items


def _billing_periods(subscription: SubscriptionRecord, contract: ContractTerms, now: int) -> dict[str, Any]:
    """The subscription's previous, current and next billing periods around now (those it has),
    of its own billing frequency."""
    terms = subscription.terms()
    schedule = contract.subscription_schedule(terms)

    def within(period: Period | None) -> dict[str, str] | None:
        if period is None:
            return None
        window = terms.window(period.start_us, period.end_us)
        if window is None:
            return None
        return {"starting_at": format_rfc3339(window[0]), "ending_before": format_rfc3339(window[1])}

    current = schedule.period_containing(now)
    result: dict[str, Any] = {}
    if current is not None:
        previous = schedule.period_containing(current.start_us - 1)
        following = schedule.period_containing(current.end_us)
        for name, period in (("previous", previous), ("current", current), ("next", following)):
            shown = within(period)
            if shown is not None:
                result[name] = shown
    return result
