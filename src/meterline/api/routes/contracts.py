"""Contracts: /v1/contracts/{create,get,list,archive}, and /v2/contracts/{get,list}.

A contract is shown as Metronome's v1 `Contract`, or the SDK's `ContractV2` on v2 paths
(`api.contract_views`). `list` pages with a body `cursor` (1-20 per page, as
Metronome), by starting_at then id. Every change asks the evaluator to recompute the customer's
billing in the same transaction, and wakes it once committed.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import Field, field_validator

from meterline.api import edit_history
from meterline.api.catalog_fields import HourInstant, Instant
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
from meterline.api.contract_views import ContractShape, contract_v2_view, contract_view, contract_views
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.integration_fields import ContractIntegrationFields
from meterline.api.override_fields import OverrideIn
from meterline.api.pagination import page_request
from meterline.api.recurring_fields import RecurringCommitIn, RecurringCreditIn
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import CustomFields, StrictModel, id_response
from meterline.api.state import AppState, app_state, wake_evaluator
from meterline.api.subscription_fields import SubscriptionIn
from meterline.api.threshold_fields import PrepaidBalanceThresholdIn, SpendThresholdIn
from meterline.domain.billing_periods import AnchorDay, Frequency
from meterline.domain.errors import InvalidInput
from meterline.services import contracts as service
from meterline.store import contracts as store
from meterline.store import customers
from meterline.store.contracts import NewContract, StatementSchedule, Transition

router = APIRouter(route_class=ExactDecimalRoute)
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
        # The contract taken over from ends where this one starts: an edit of that contract.
        source = None
        if new.transition is not None:
            source = edit_history.before_edit(
                conn, new.customer_id, new.transition.from_contract_id, state.settings
            )
        contract_id = service.create_contract(conn, new, open_horizon_us=state.settings.open_horizon_us())
        edit_history.record_edit(conn, source, state.settings)
    wake_evaluator(state)
    return ExactJSONResponse(id_response(contract_id))


@router.post("/v1/contracts/get")
def get_contract(body: ContractGet, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.read() as conn:
        contract = store.get_contract(conn, body.customer_id, body.contract_id)
        views = contract_views(
            conn, body.customer_id, [contract], state.settings, body.include_balance, body.include_ledgers
        )
    return ExactJSONResponse({"data": views[0]})


@router.post("/v2/contracts/get")
def get_contract_v2(body: ContractGetV2, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    """The SDK's ContractV2: the contract as it is now (edits included), its terms at the top level."""
    with state.db.read() as conn:
        contract = store.get_contract(conn, body.customer_id, body.contract_id)
        views = contract_views(
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
    return ExactJSONResponse(_listed(body, state, contract_view))


@router.post("/v2/contracts/list")
def list_contracts_v2(body: ContractList, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    """The same page and filters as v1 contracts/list, each contract as v2 contracts/get shows it."""
    return ExactJSONResponse(_listed(body, state, contract_v2_view))


def _listed(body: ContractList, state: AppState, shape: ContractShape) -> dict[str, Any]:
    """One page of the customer's contracts by starting_at then id, with the next page's cursor."""
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
        views = contract_views(
            conn, body.customer_id, page, state.settings, body.include_balance, body.include_ledgers, shape
        )
    return {"data": views, "cursor": cursor}


@router.post("/v1/contracts/archive")
def archive_contract(body: ContractArchive, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    with state.db.write() as conn:
        service.archive_contract(conn, body.customer_id, body.contract_id, void_invoices=body.void_invoices)
    wake_evaluator(state)
    return ExactJSONResponse(id_response(body.contract_id))
