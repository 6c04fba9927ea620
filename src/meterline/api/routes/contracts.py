"""Contracts: /v1/contracts/{create,get,list,archive}, and /v2/contracts/get.

A contract is shown as Metronome's v1 `Contract`: with no amendments (meterline has none yet),
`initial` and `current` are the same terms. `list` pages with a body `cursor` (1-20 per page, as
Metronome), by starting_at then id. Every change asks the evaluator to recompute the customer's
billing in the same transaction, and wakes it once committed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import Field, field_validator
from sqlalchemy import Connection

from meterline.api.catalog_fields import API_ACTOR, HourInstant, Instant
from meterline.api.commit_views import CommitExtras, commit_extras, commit_view, schedule_view
from meterline.api.contract_fields import (
    MAX_ITEMS,
    ContractCommitIn,
    ContractCreditIn,
    Name,
    NonEmpty,
    NotSupported,
    ScheduledChargeIn,
    UniquenessKey,
)
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.integration_fields import ContractIntegrationFields, integration_view
from meterline.api.override_fields import OverrideIn
from meterline.api.pagination import page_request
from meterline.api.recurring_fields import RecurringCommitIn, RecurringCreditIn
from meterline.api.recurring_views import recurring_view
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import CustomFields, StrictModel, id_response, optional_time
from meterline.api.state import AppState, app_state, wake_evaluator
from meterline.api.subscription_fields import SubscriptionIn
from meterline.api.subscription_views import subscription_views
from meterline.api.threshold_fields import PrepaidBalanceThresholdIn, SpendThresholdIn, threshold_view
from meterline.domain.billing_periods import AnchorDay, Frequency
from meterline.domain.contracts import CREDIT
from meterline.domain.errors import InvalidInput
from meterline.domain.override_rules import OverrideSpec, OverrideTarget
from meterline.domain.threshold_billing import FIELDS
from meterline.domain.timeutil import format_rfc3339
from meterline.services import contracts as service
from meterline.settings import Settings
from meterline.store import commits, customers
from meterline.store import contracts as store
from meterline.store.commits import CommitRecord
from meterline.store.contracts import (
    ON_USAGE_INVOICES,
    ContractRecord,
    NewContract,
    StatementSchedule,
    Transition,
    TransitionRecord,
)
from meterline.store.scheduled_charges import ScheduledChargeRecord

router = APIRouter(route_class=ExactDecimalRoute)
ContractShape = Callable[
    [ContractRecord, list[CommitRecord], CommitExtras, list[TransitionRecord]], dict[str, Any]
]
MAX_PAGE = 20  # Metronome's range for contracts/list


class StatementScheduleIn(StrictModel):
    frequency: Literal["MONTHLY", "QUARTERLY", "ANNUAL", "WEEKLY"]
    day: Literal["FIRST_OF_MONTH", "CONTRACT_START", "CUSTOM_DATE"] = "FIRST_OF_MONTH"
    billing_anchor_date: HourInstant | None = None
    invoice_generation_starting_at: NotSupported = None

    def schedule(self) -> StatementSchedule:
        return StatementSchedule(Frequency(self.frequency), AnchorDay(self.day), self.billing_anchor_date)


class TrueupBehaviorIn(StrictModel):
    # REMOVE: the true-ups of the contract taken over dated from this one's start on are not
    # billed (`engine.scheduled_billing`); AS_IS (the default) bills them.
    trueup: Literal["REMOVE", "AS_IS"] | None = None


class TransitionIn(StrictModel):
    from_contract_id: NonEmpty
    type: Literal["RENEWAL", "SUPERSEDE"]
    future_invoice_behavior: TrueupBehaviorIn | None = None

    @field_validator("type", mode="before")
    @classmethod
    def _upper_type(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    def transition(self) -> Transition:
        behavior = self.future_invoice_behavior
        return Transition(self.from_contract_id, self.type, None if behavior is None else behavior.trueup)


class ContractCreate(ContractIntegrationFields):
    customer_id: str
    starting_at: HourInstant
    ending_before: HourInstant | None = None
    rate_card_id: NonEmpty | None = None
    rate_card_alias: NonEmpty | None = None
    name: Name | None = None
    custom_fields: CustomFields = Field(default_factory=dict)
    usage_statement_schedule: StatementScheduleIn | None = None
    multiplier_override_prioritization: Literal["LOWEST_MULTIPLIER", "EXPLICIT"] = "LOWEST_MULTIPLIER"
    uniqueness_key: UniquenessKey | None = None
    commits: list[ContractCommitIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    credits: list[ContractCreditIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    overrides: list[OverrideIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    recurring_commits: list[RecurringCommitIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    recurring_credits: list[RecurringCreditIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    discounts: NotSupported = None
    hierarchy_configuration: NotSupported = None
    netsuite_sales_order_id: NotSupported = None
    package_alias: NotSupported = None
    package_id: NotSupported = None
    prepaid_balance_threshold_configuration: PrepaidBalanceThresholdIn | None = None
    professional_services: NotSupported = None
    reseller_royalties: NotSupported = None
    revenue_system_configuration: NotSupported = None
    scheduled_charges: list[ScheduledChargeIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    scheduled_charges_on_usage_invoices: Literal["ALL"] | None = None
    spend_threshold_configuration: SpendThresholdIn | None = None
    spend_trackers: NotSupported = None
    subscriptions: list[SubscriptionIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    transition: TransitionIn | None = None
    usage_filter: NotSupported = None

    def new_contract(self) -> NewContract:
        schedule = self.usage_statement_schedule
        return NewContract(
            customer_id=self.customer_id,
            starting_at_us=self.starting_at,
            rate_card_id=self.rate_card_id,
            rate_card_alias=self.rate_card_alias,
            ending_before_us=self.ending_before,
            name=self.name,
            schedule=schedule.schedule() if schedule is not None else StatementSchedule(),
            prioritization=self.multiplier_override_prioritization,
            overrides=tuple(o.spec() for o in self.overrides),
            commits=tuple(c.new(f"commits.{i}") for i, c in enumerate(self.commits)),
            credits=tuple(c.new(f"credits.{i}") for i, c in enumerate(self.credits)),
            recurring=tuple(
                [r.spec(f"recurring_commits.{i}") for i, r in enumerate(self.recurring_commits)]
                + [r.spec(f"recurring_credits.{i}") for i, r in enumerate(self.recurring_credits)]
            ),
            thresholds=tuple(
                c.config()
                for c in (self.spend_threshold_configuration, self.prepaid_balance_threshold_configuration)
                if c is not None
            ),
            subscriptions=tuple(s.new(f"subscriptions.{i}") for i, s in enumerate(self.subscriptions)),
            custom_fields=self.custom_fields,
            uniqueness_key=self.uniqueness_key,
            integration_fields=self.stored(),
            scheduled_charges=tuple(
                c.new(f"scheduled_charges.{i}") for i, c in enumerate(self.scheduled_charges)
            ),
            charges_on_usage_invoices=self.scheduled_charges_on_usage_invoices == "ALL",
            transition=None if self.transition is None else self.transition.transition(),
        )


class ContractGet(StrictModel):
    customer_id: str
    contract_id: str
    include_balance: bool = False
    include_ledgers: bool = False


class ContractGetV2(ContractGet):
    as_of_date: NotSupported = None


class ContractList(StrictModel):
    customer_id: str
    covering_date: Instant | None = None
    starting_at: Instant | None = None
    include_archived: bool = False
    include_balance: bool = False
    include_ledgers: bool = False
    limit: int | None = None  # MAX_PAGE
    cursor: str | None = None


class ContractArchive(StrictModel):
    customer_id: str
    contract_id: str
    void_invoices: bool


@router.post("/v1/contracts/create")
def create_contract(body: ContractCreate, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    new = body.new_contract()
    with state.db.write() as conn:
        contract_id = service.create_contract(conn, new, open_horizon_us=state.settings.open_horizon_us())
    wake_evaluator(state)
    return ExactJSONResponse(id_response(contract_id))


@router.post("/v1/contracts/get")
def get_contract(body: ContractGet, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.read() as conn:
        contract = store.get_contract(conn, body.customer_id, body.contract_id)
        views = _views(
            conn, body.customer_id, [contract], state.settings, body.include_balance, body.include_ledgers
        )
    return ExactJSONResponse({"data": views[0]})


@router.post("/v2/contracts/get")
def get_contract_v2(body: ContractGetV2, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    """The SDK's ContractV2: the contract as it is now (edits included), its terms at the top level."""
    with state.db.read() as conn:
        contract = store.get_contract(conn, body.customer_id, body.contract_id)
        views = _views(
            conn,
            body.customer_id,
            [contract],
            state.settings,
            body.include_balance,
            body.include_ledgers,
            shape=contract_v2_view,
        )
    return ExactJSONResponse({"data": views[0]})


@router.post("/v1/contracts/list")
def list_contracts(body: ContractList, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    if body.covering_date is not None and body.starting_at is not None:
        raise InvalidInput("starting_at: cannot be given together with covering_date")
    asked = page_request(
        state,
        "contracts",
        tuple[int, str],
        limit=body.limit,
        token=body.cursor,
        max_size=MAX_PAGE,
        cursor_field="cursor",
    )
    with state.db.read() as conn:
        customers.get_customer(conn, body.customer_id)
        found = store.list_contracts(
            conn,
            body.customer_id,
            covering_us=body.covering_date,
            starting_at_us=body.starting_at,
            include_archived=body.include_archived,
            after=asked.after,
            limit=asked.size + 1,
        )
        page, cursor = asked.cut(found, lambda c: (c.starting_at_us, c.id))
        views = _views(
            conn, body.customer_id, page, state.settings, body.include_balance, body.include_ledgers
        )
    return ExactJSONResponse({"data": views, "cursor": cursor})


@router.post("/v1/contracts/archive")
def archive_contract(body: ContractArchive, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        service.archive_contract(conn, body.customer_id, body.contract_id, void_invoices=body.void_invoices)
    wake_evaluator(state)
    return ExactJSONResponse(id_response(body.contract_id))


def _views(
    conn: Connection,
    customer_id: str,
    found: list[ContractRecord],
    settings: Settings,
    include_balance: bool,
    include_ledgers: bool,
    shape: ContractShape | None = None,
) -> list[dict[str, Any]]:
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
