"""Contracts as Metronome shows them: v1's `Contract` (with `initial` and `current` terms) and the
SDK's `ContractV2` (the terms at the top level), with their commits, credits, overrides,
scheduled charges, recurring commits, subscriptions and transitions.

With no amendments (meterline has none), v1's `initial` and `current` are the same terms; v2 shows
the contract as edited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from meterline.api.catalog_fields import API_ACTOR
from meterline.api.commit_views import CommitExtras, commit_extras, commit_view, schedule_view
from meterline.api.integration_fields import integration_view
from meterline.api.recurring_views import recurring_view
from meterline.api.routes.common import optional_time
from meterline.api.subscription_views import subscription_views
from meterline.api.threshold_fields import threshold_view
from meterline.domain.contracts import CREDIT
from meterline.domain.override_rules import OverrideSpec, OverrideTarget
from meterline.domain.threshold_billing import FIELDS
from meterline.domain.timeutil import format_rfc3339
from meterline.settings import Settings
from meterline.store import commits
from meterline.store import contracts as store
from meterline.store.commits import CommitRecord
from meterline.store.contracts import ON_USAGE_INVOICES, ContractRecord, TransitionRecord
from meterline.store.scheduled_charges import ScheduledChargeRecord

ContractShape = Callable[
    [ContractRecord, list[CommitRecord], CommitExtras, list[TransitionRecord]], dict[str, Any]
]


def contract_views(
    conn: Connection,
    customer_id: str,
    found: list[ContractRecord],
    settings: Settings,
    include_balance: bool,
    include_ledgers: bool,
    shape: ContractShape | None = None,
) -> list[dict[str, Any]]:
    """The contracts, shown as `shape` has it (v1's Contract unless given)."""
    shown = contract_view if shape is None else shape
    by_contract = commits.commits_of_contracts(conn, [c.id for c in found])
    extras = commit_extras(
        conn,
        customer_id,
        [r for records in by_contract.values() for r in records],
        settings=settings,
        product_ids=[p for c in found for o in c.overrides for p in _override_products(o)]
        + [charge.product_id for c in found for charge in c.scheduled_charges]
        + [r.product_id for c in found for r in c.recurring]
        + [s.product_id for c in found for s in c.subscriptions],
        include_balance=include_balance,
        include_ledgers=include_ledgers,
    )
    transitions = store.transitions_of(conn, found)
    return [shown(c, by_contract[c.id], extras, transitions[c.id]) for c in found]


def contract_view(
    contract: ContractRecord,
    records: list[CommitRecord],
    extras: CommitExtras,
    transitions: list[TransitionRecord],
) -> dict[str, Any]:
    terms = _terms_view(contract, records, extras, transitions)
    return {**_contract_fields(contract, extras), "amendments": [], "initial": terms, "current": terms}


def contract_v2_view(
    contract: ContractRecord,
    records: list[CommitRecord],
    extras: CommitExtras,
    transitions: list[TransitionRecord],
) -> dict[str, Any]:
    """The SDK's ContractV2: the terms of the v1 view, at the top level (v2 has no amendments)."""
    terms = _terms_view(contract, records, extras, transitions)
    return {**_contract_fields(contract, extras), **terms, "usage_filter": []}


def _contract_fields(contract: ContractRecord, extras: CommitExtras) -> dict[str, Any]:
    """What v1 and v2 contracts show beside the terms."""
    view: dict[str, Any] = {
        "id": contract.id,
        "customer_id": contract.customer_id,
        "custom_fields": contract.custom_fields,
        "subscriptions": subscription_views(contract, extras.product_names),
    }
    if contract.uniqueness_key is not None:
        view["uniqueness_key"] = contract.uniqueness_key
    if contract.archived_at_us is not None:
        view["archived_at"] = optional_time(contract.archived_at_us)
    return view


def _terms_view(
    contract: ContractRecord,
    records: list[CommitRecord],
    extras: CommitExtras,
    transitions: list[TransitionRecord],
) -> dict[str, Any]:
    """The SDK's ContractWithoutAmendments."""
    view: dict[str, Any] = {
        "commits": [commit_view(r, extras) for r in records if r.kind != CREDIT],
        "credits": [commit_view(r, extras) for r in records if r.kind == CREDIT],
        "overrides": [_override_view(o, contract, extras) for o in contract.overrides],
        "scheduled_charges": [_scheduled_charge_view(c, extras) for c in contract.scheduled_charges],
        "transitions": [
            {"from_contract_id": t.from_contract_id, "to_contract_id": t.to_contract_id, "type": t.type}
            for t in transitions
        ],
        "rate_card_id": contract.rate_card_id,
        "starting_at": format_rfc3339(contract.starting_at_us),
        "usage_statement_schedule": {
            "billing_anchor_date": format_rfc3339(contract.statement_schedule().anchor_us),
            "frequency": contract.schedule.frequency.value,
        },
        "multiplier_override_prioritization": contract.prioritization,
        "created_at": format_rfc3339(contract.created_at_us),
        "created_by": API_ACTOR,
    }
    if contract.recurring:
        anchor_us = contract.statement_schedule().anchor_us
        view["recurring_commits"] = [
            recurring_view(r, contract.id, anchor_us, extras) for r in contract.recurring if r.kind != CREDIT
        ]
        view["recurring_credits"] = [
            recurring_view(r, contract.id, anchor_us, extras) for r in contract.recurring if r.kind == CREDIT
        ]
    for config in contract.thresholds:
        view[FIELDS[config.kind]] = threshold_view(config)
    if contract.ending_before_us is not None:
        view["ending_before"] = format_rfc3339(contract.ending_before_us)
    if contract.name is not None:
        view["name"] = contract.name
    if contract.charges_on_usage_invoices:
        view["scheduled_charges_on_usage_invoices"] = ON_USAGE_INVOICES
    view.update(integration_view(contract.integration_fields))
    return view


def _scheduled_charge_view(charge: ScheduledChargeRecord, extras: CommitExtras) -> dict[str, Any]:
    """The SDK's ScheduledCharge."""
    view: dict[str, Any] = {
        "id": charge.id,
        "product": {"id": charge.product_id, "name": extras.product_names.get(charge.product_id, "")},
        "schedule": schedule_view(charge.schedule, extras),
        "custom_fields": charge.custom_fields,
    }
    if charge.name is not None:
        view["name"] = charge.name
    if charge.archived_at_us is not None:
        view["archived_at"] = format_rfc3339(charge.archived_at_us)
    return view


def _override_view(override: OverrideSpec, contract: ContractRecord, extras: CommitExtras) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": override.id,
        "type": override.type,
        "starting_at": format_rfc3339(override.starting_at_us),
        "created_at": format_rfc3339(
            contract.created_at_us if override.created_at_us is None else override.created_at_us
        ),
    }
    if override.ending_before_us is not None:
        view["ending_before"] = format_rfc3339(override.ending_before_us)
    if override.product_id is not None:
        view["product"] = {
            "id": override.product_id,
            "name": extras.product_names.get(override.product_id, ""),
        }
    if override.applicable_product_tags:
        view["applicable_product_tags"] = list(override.applicable_product_tags)
    if override.specifiers:
        view["override_specifiers"] = [_specifier_view(s) for s in override.specifiers]
    if override.multiplier is not None:
        view["multiplier"] = override.multiplier
    if override.overwrite_rate is not None:
        view["overwrite_rate"] = _overwrite_view(override, extras)
    if override.priority is not None:
        view["priority"] = override.priority
    if override.entitled is not None:
        view["entitled"] = override.entitled
    return view


def _specifier_view(target: OverrideTarget) -> dict[str, Any]:
    given = {
        "product_id": target.product_id,
        "product_tags": list(target.product_tags) or None,
        "pricing_group_values": dict(target.pricing_group_values) if target.pricing_group_values else None,
        "billing_frequency": target.billing_frequency,
    }
    return {k: v for k, v in given.items() if v is not None}


def _overwrite_view(override: OverrideSpec, extras: CommitExtras) -> dict[str, Any]:
    rate = override.overwrite_rate
    assert rate is not None
    view: dict[str, Any] = {"rate_type": rate.rate_type}
    if rate.price is not None:
        view["price"] = rate.price
    if rate.tiers is not None:
        view["tiers"] = [
            {"price": t.price} if t.size is None else {"price": t.price, "size": t.size} for t in rate.tiers
        ]
    if rate.credit_type_id is not None:
        name = extras.credit_type_names.get(rate.credit_type_id, "")
        view["credit_type"] = {"id": rate.credit_type_id, "name": name}
    return view


def _override_products(override: OverrideSpec) -> list[str]:
    return [p for p in (override.product_id, *(s.product_id for s in override.specifiers)) if p]
