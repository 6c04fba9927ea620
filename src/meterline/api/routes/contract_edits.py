"""Metronome's v2 edit of a contract: /v2/contracts/edit.

An edit adds subscriptions, commits, credits, scheduled charges, recurring commits and credits (the
shapes and rules of contracts/create), updates subscriptions, commits and credits (their schedule
items, products, name, description, priority) and scheduled charges (their schedule items), adds and removes overrides, updates recurring commits and credits (their periods to come), adds threshold billing, archives commits, credits and scheduled charges, and sets the contract's end, name and payment terms; `services.contract_edits` applies them in one transaction. Every other edit of
Metronome's is refused with a 400 naming its field, before anything is written, so no edit is
ever half-applied. v2 contracts/get shows the contract as edited, and v2 contracts/getEditHistory
the edit, recorded in its transaction (`api.edit_history`).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import Field

from meterline.api import edit_history
from meterline.api.catalog_fields import HourInstant, NonNegativeAmount
from meterline.api.commit_edit_fields import CommitUpdateIn, CreditUpdateIn, ScheduledChargeUpdateIn
from meterline.api.contract_fields import (
    MAX_ITEMS,
    ContractCommitIn,
    ContractCreditIn,
    Name,
    NonEmpty,
    NotSupported,
    ScheduledChargeIn,
)
from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.override_fields import OverrideIn
from meterline.api.recurring_fields import (
    RecurringCommitIn,
    RecurringCommitUpdateIn,
    RecurringCreditIn,
    RecurringCreditUpdateIn,
)
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import StrictModel, id_response
from meterline.api.state import AppState, app_state, wake_evaluator
from meterline.api.subscription_fields import SubscriptionIn, SubscriptionUpdateIn
from meterline.api.threshold_fields import PrepaidBalanceThresholdIn, SpendThresholdIn
from meterline.services import contract_edits as service
from meterline.services.contract_edits import ContractEdit

router = APIRouter(route_class=ExactDecimalRoute)


class EditCommitIn(ContractCommitIn):
    """`add_commits`: a contract's commit, as on contracts/create."""

    payment_gate_config: NotSupported = None


class ArchiveIn(StrictModel):
    """An object of the contract, by id (`archive_*`, `remove_overrides`)."""

    id: NonEmpty


class ContractEditIn(StrictModel):
    """The SDK's ContractEditParams."""

    customer_id: str
    contract_id: str
    add_subscriptions: list[SubscriptionIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    update_subscriptions: list[SubscriptionUpdateIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    add_commits: list[EditCommitIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    add_credits: list[ContractCreditIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    add_scheduled_charges: list[ScheduledChargeIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    add_recurring_commits: list[RecurringCommitIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    add_recurring_credits: list[RecurringCreditIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    update_contract_end_date: HourInstant | None = None
    allow_contract_ending_before_finalized_invoice: bool = True  # Metronome's default
    update_contract_name: Name | None = None
    update_net_payment_terms_days: NonNegativeAmount | None = None
    add_billing_provider_configuration_update: NotSupported = None
    add_discounts: NotSupported = None
    add_overrides: list[OverrideIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    remove_overrides: list[ArchiveIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    add_prepaid_balance_threshold_configuration: PrepaidBalanceThresholdIn | None = None
    add_professional_services: NotSupported = None
    add_reseller_royalties: NotSupported = None
    add_revenue_system_configuration_update: NotSupported = None
    add_spend_threshold_configuration: SpendThresholdIn | None = None
    add_spend_trackers: NotSupported = None
    archive_commits: list[ArchiveIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    archive_credits: list[ArchiveIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    archive_scheduled_charges: list[ArchiveIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    archive_spend_trackers: NotSupported = None
    uniqueness_key: NotSupported = None
    update_commits: list[CommitUpdateIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    update_credits: list[CreditUpdateIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    update_prepaid_balance_threshold_configuration: NotSupported = None
    update_recurring_commits: list[RecurringCommitUpdateIn] = Field(
        default_factory=list, max_length=MAX_ITEMS
    )
    update_recurring_credits: list[RecurringCreditUpdateIn] = Field(
        default_factory=list, max_length=MAX_ITEMS
    )
    update_scheduled_charges: list[ScheduledChargeUpdateIn] = Field(
        default_factory=list, max_length=MAX_ITEMS
    )
    update_spend_threshold_configuration: NotSupported = None

    def edit(self) -> ContractEdit:
        given = self.model_fields_set
        return ContractEdit(
            customer_id=self.customer_id,
            contract_id=self.contract_id,
            new_subscriptions=tuple(
                s.new(f"add_subscriptions.{i}") for i, s in enumerate(self.add_subscriptions)
            ),
            subscription_updates=tuple(
                u.update(f"update_subscriptions.{i}") for i, u in enumerate(self.update_subscriptions)
            ),
            commits=tuple(c.new(f"add_commits.{i}") for i, c in enumerate(self.add_commits)),
            credits=tuple(c.new(f"add_credits.{i}") for i, c in enumerate(self.add_credits)),
            scheduled_charges=tuple(
                c.new(f"add_scheduled_charges.{i}") for i, c in enumerate(self.add_scheduled_charges)
            ),
            recurring=tuple(
                [r.spec(f"add_recurring_commits.{i}") for i, r in enumerate(self.add_recurring_commits)]
                + [r.spec(f"add_recurring_credits.{i}") for i, r in enumerate(self.add_recurring_credits)]
            ),
            set_end="update_contract_end_date" in given,
            ending_before_us=self.update_contract_end_date,
            allow_before_finalized=self.allow_contract_ending_before_finalized_invoice,
            set_name="update_contract_name" in given,
            name=self.update_contract_name,
            set_payment_terms="update_net_payment_terms_days" in given,
            net_payment_terms_days=self.update_net_payment_terms_days,
            archive_commits=tuple(a.id for a in self.archive_commits),
            archive_credits=tuple(a.id for a in self.archive_credits),
            archive_scheduled_charges=tuple(a.id for a in self.archive_scheduled_charges),
            commit_updates=tuple(u.update(f"update_commits.{i}") for i, u in enumerate(self.update_commits)),
            credit_updates=tuple(u.update(f"update_credits.{i}") for i, u in enumerate(self.update_credits)),
            charge_updates=tuple(
                u.update(f"update_scheduled_charges.{i}") for i, u in enumerate(self.update_scheduled_charges)
            ),
            recurring_commit_updates=tuple(u.update() for u in self.update_recurring_commits),
            recurring_credit_updates=tuple(u.update() for u in self.update_recurring_credits),
            thresholds=tuple(
                c.config()
                for c in (
                    self.add_spend_threshold_configuration,
                    self.add_prepaid_balance_threshold_configuration,
                )
                if c is not None
            ),
            new_overrides=tuple(o.spec() for o in self.add_overrides),
            removed_overrides=tuple(o.id for o in self.remove_overrides),
        )


@router.post("/v2/contracts/edit")
def edit_contract(body: ContractEditIn, state: AppState = Depends(app_state)) -> ExactJSONResponse:
    edit = body.edit()
    with state.db.write() as conn:
        before = edit_history.before_edit(conn, body.customer_id, body.contract_id, state.settings)
        service.edit_contract(conn, edit, open_horizon_us=state.settings.open_horizon_us())
        edit_history.record_edit(conn, before, state.settings)
    wake_evaluator(state)
    return ExactJSONResponse(id_response(body.contract_id))
