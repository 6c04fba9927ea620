"""Request models of v2 contracts/edit `update_commits`, `update_credits` and
`update_scheduled_charges` (the SDK's shapes): schedule items added, removed and changed by id, the
products a commit applies to, its name, description and priority; and of v2 contracts/commits/edit
and contracts/credits/edit, the same fields for one commit or credit of the customer's or of one
of its contracts, with its specifiers and (a commit) the contract it is invoiced on. What meterline
does not edit yet is `NotSupported` (a 400 naming it).
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import Field, field_validator

from meterline.api.catalog_fields import FiniteAmount, HourInstant, Instant, PositiveAmount
from meterline.api.contract_fields import (
    MAX_ITEMS,
    AccessItemIn,
    InvoiceItemIn,
    Name,
    NonEmpty,
    NotSupported,
    NotSupportedUnlessEmpty,
    SpecifierIn,
    refuse_commit_rate,
    tuple_or_none,
)
from meterline.api.routes.common import StrictModel
from meterline.domain.commit_edits import AccessEdit, InvoiceEdit, ItemChange, SegmentChange
from meterline.domain.commit_rules import field_path, invoice_item
from meterline.services.commit_edits import ChargeUpdate, CommitUpdate


class ItemId(StrictModel):
    id: NonEmpty


class AccessItemChangeIn(StrictModel):
    id: NonEmpty
    amount: PositiveAmount | None = None
    starting_at: HourInstant | None = None
    ending_before: HourInstant | None = None

    def change(self) -> SegmentChange:
        return SegmentChange(self.id, self.amount, self.starting_at, self.ending_before)


class AccessScheduleEditIn(StrictModel):
    add_schedule_items: list[AccessItemIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    remove_schedule_items: list[ItemId] = Field(default_factory=list, max_length=MAX_ITEMS)
    update_schedule_items: list[AccessItemChangeIn] = Field(default_factory=list, max_length=MAX_ITEMS)

    def edit(self) -> AccessEdit:
        return AccessEdit(
            tuple(i.item() for i in self.add_schedule_items),
            tuple(i.id for i in self.remove_schedule_items),
            tuple(i.change() for i in self.update_schedule_items),
        )


class InvoiceItemChangeIn(StrictModel):
    id: NonEmpty
    timestamp: Instant | None = None
    amount: PositiveAmount | None = None
    unit_price: PositiveAmount | None = None
    quantity: PositiveAmount | None = None

    def change(self) -> ItemChange:
        return ItemChange(self.id, self.timestamp, self.amount, self.unit_price, self.quantity)


class InvoiceScheduleEditIn(StrictModel):
    add_schedule_items: list[InvoiceItemIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    remove_schedule_items: list[ItemId] = Field(default_factory=list, max_length=MAX_ITEMS)
    update_schedule_items: list[InvoiceItemChangeIn] = Field(default_factory=list, max_length=MAX_ITEMS)

    def edit(self, path: str) -> InvoiceEdit:
        where = field_path(path, "invoice_schedule", "add_schedule_items")
        return InvoiceEdit(
            tuple(
                invoice_item(i.timestamp, i.amount, i.unit_price, i.quantity, field_path(where, index))
                for index, i in enumerate(self.add_schedule_items)
            ),
            tuple(i.id for i in self.remove_schedule_items),
            tuple(i.change() for i in self.update_schedule_items),
        )


class UpdateFields(StrictModel):
    """What every update of a commit or credit may change."""

    access_schedule: AccessScheduleEditIn | None = None
    applicable_product_ids: list[NonEmpty] | None = Field(default=None, max_length=MAX_ITEMS)
    applicable_product_tags: list[NonEmpty] | None = Field(default=None, max_length=MAX_ITEMS)
    name: Name | None = None
    description: str | None = None
    priority: FiniteAmount | None = None
    rate_type: str | None = None
    hierarchy_configuration: NotSupported = None
    netsuite_sales_order_id: NotSupported = None
    product_id: NotSupported = None
    rollover_fraction: NotSupported = None

    _list_rate_only = field_validator("rate_type", mode="before")(refuse_commit_rate)

    def changes(self, commit_id: str, invoice: InvoiceEdit | None = None) -> CommitUpdate:
        given = self.model_fields_set
        return CommitUpdate(
            commit_id=commit_id,
            access=None if self.access_schedule is None else self.access_schedule.edit(),
            invoice=invoice,
            set_product_ids="applicable_product_ids" in given,
            applicable_product_ids=tuple_or_none(self.applicable_product_ids),
            set_product_tags="applicable_product_tags" in given,
            applicable_product_tags=tuple_or_none(self.applicable_product_tags),
            name=self.name,
            description=self.description,
            set_priority="priority" in given,
            priority=self.priority,
        )


class CreditUpdateIn(UpdateFields):
    credit_id: NonEmpty

    def update(self, path: str) -> CommitUpdate:
        return self.changes(self.credit_id)


class CommitUpdateIn(UpdateFields):
    commit_id: NonEmpty
    invoice_schedule: InvoiceScheduleEditIn | None = None

    def update(self, path: str) -> CommitUpdate:
        invoice = None if self.invoice_schedule is None else self.invoice_schedule.edit(path)
        return self.changes(self.commit_id, invoice)


class ScheduledChargeUpdateIn(StrictModel):
    scheduled_charge_id: NonEmpty
    invoice_schedule: InvoiceScheduleEditIn | None = None
    netsuite_sales_order_id: NotSupported = None

    def update(self, path: str) -> ChargeUpdate:
        invoice = None if self.invoice_schedule is None else self.invoice_schedule.edit(path)
        return ChargeUpdate(self.scheduled_charge_id, invoice)


class OneCommitFields(StrictModel):
    """What commits/edit and credits/edit add to an update of v2 contracts/edit."""

    customer_id: NonEmpty
    applicable_contract_ids: NotSupportedUnlessEmpty = None  # null: every contract, as meterline does
    specifiers: list[SpecifierIn] | None = Field(default=None, max_length=MAX_ITEMS)

    def scoped(self, update: CommitUpdate) -> CommitUpdate:
        specifiers = self.specifiers
        return replace(
            update,
            set_specifiers="specifiers" in self.model_fields_set,
            specifiers=None if specifiers is None else tuple(s.specifier() for s in specifiers),
        )


class CommitEditIn(CommitUpdateIn, OneCommitFields):
    """The SDK's ContractEditCommitParams."""

    invoice_contract_id: NonEmpty | None = None

    def edit(self) -> CommitUpdate:
        return replace(self.scoped(self.update("")), invoice_contract_id=self.invoice_contract_id)


class CreditEditIn(CreditUpdateIn, OneCommitFields):
    """The SDK's ContractEditCreditParams."""

    def edit(self) -> CommitUpdate:
        return self.scoped(self.update(""))
