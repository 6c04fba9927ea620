"""Request models of commits and credits, shared by contract creation and the customer-level
endpoints: their shapes, types and bounds. The rules that relate fields live in
domain/commit_rules.py and are checked by store/commits.py, with the same field paths.

Fields Metronome has and meterline does not support yet are declared `NotSupported`, so giving
one is a 400 that names it (rather than "unknown field", which would suggest a typo).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal, Protocol

from pydantic import BeforeValidator, Field, field_validator

from meterline.api.catalog_fields import FiniteAmount, Fraction, HourInstant, Instant, PositiveAmount
from meterline.api.routes.common import CustomFields, StrictModel
from meterline.domain.commit_rules import (
    AccessItem,
    InvoiceItem,
    InvoiceSchedule,
    ProductScope,
    Specifier,
    field_path,
    invoice_item,
)
from meterline.domain.contracts import CREDIT, POSTPAID
from meterline.domain.errors import InvalidInput
from meterline.domain.ids import USD_CENTS_CREDIT_TYPE_ID
from meterline.domain.recurring_schedules import Distribution, RecurringSchedule, recurring_items
from meterline.store.commits import NewCommit
from meterline.store.scheduled_charges import NewScheduledCharge

MAX_ITEMS = 1000


def _refuse(value: Any) -> Any:
    if value is None:
        return None  # an explicit null says nothing
    raise ValueError("meterline does not support this field yet")


def _refuse_non_empty(value: Any) -> Any:
    if value in (None, [], {}):
        return None  # empty means the default (e.g. every contract), which is what meterline does
    raise ValueError("meterline does not support this field yet")


NotSupported = Annotated[Any, BeforeValidator(_refuse)]
NotSupportedUnlessEmpty = Annotated[Any, BeforeValidator(_refuse_non_empty)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
NonEmpty = Annotated[str, Field(min_length=1)]
UniquenessKey = Annotated[str, Field(min_length=1, max_length=128)]
CommitType = Literal["PREPAID", "POSTPAID"]


def upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def refuse_quantity_access(value: str | None) -> str | None:
    if value == "QUANTITY":
        raise ValueError("meterline does not support QUANTITY access yet; use SPEND")
    return value


def refuse_commit_rate(value: Any) -> Any:
    value = upper(value)
    if value == "COMMIT_RATE":
        raise ValueError(
            "meterline does not support COMMIT_RATE yet (rates have no commit_rate); use LIST_RATE"
        )
    return value


class AccessItemIn(StrictModel):
    amount: PositiveAmount
    starting_at: HourInstant
    ending_before: HourInstant

    def item(self) -> AccessItem:
        return AccessItem(self.amount, self.starting_at, self.ending_before)


class AccessScheduleIn(StrictModel):
    schedule_items: list[AccessItemIn] = Field(max_length=MAX_ITEMS)
    credit_type_id: str = USD_CENTS_CREDIT_TYPE_ID
    access_type: Literal["SPEND", "QUANTITY"] | None = None

    _spend_only = field_validator("access_type")(refuse_quantity_access)

    def items(self) -> tuple[AccessItem, ...]:
        return tuple(i.item() for i in self.schedule_items)


class InvoiceItemIn(StrictModel):
    timestamp: Instant
    amount: PositiveAmount | None = None
    unit_price: PositiveAmount | None = None
    quantity: PositiveAmount | None = None


class RecurringScheduleIn(StrictModel):
    amount_distribution: Literal["DIVIDED", "DIVIDED_ROUNDED", "EACH"]
    frequency: Literal["MONTHLY", "QUARTERLY", "SEMI_ANNUAL", "ANNUAL"]
    starting_at: Instant
    ending_before: Instant
    amount: PositiveAmount | None = None
    unit_price: PositiveAmount | None = None
    quantity: PositiveAmount | None = None

    def items(self, where: str) -> tuple[InvoiceItem, ...]:
        priced = invoice_item(self.starting_at, self.amount, self.unit_price, self.quantity, where)
        recurring = RecurringSchedule(
            Distribution(self.amount_distribution),
            self.frequency,
            self.starting_at,
            self.ending_before,
            priced.unit_price,
            priced.quantity,
        )
        return recurring_items(recurring, where)


class InvoiceScheduleIn(StrictModel):
    """A commit's invoice schedule, or a scheduled charge's schedule (the SDK's same shape)."""

    credit_type_id: str = USD_CENTS_CREDIT_TYPE_ID
    do_not_invoice: bool = False
    schedule_items: list[InvoiceItemIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    recurring_schedule: RecurringScheduleIn | None = None

    def schedule(self, path: str, name: str = "invoice_schedule") -> InvoiceSchedule:
        where = field_path(path, name, "schedule_items")
        items = tuple(
            invoice_item(i.timestamp, i.amount, i.unit_price, i.quantity, field_path(where, index))
            for index, i in enumerate(self.schedule_items)
        )
        if self.recurring_schedule is not None:
            if items:
                raise InvalidInput(
                    f"{field_path(path, name, 'recurring_schedule')}: give either schedule_items or "
                    "recurring_schedule, not both"
                )
            items = self.recurring_schedule.items(field_path(path, name, "recurring_schedule"))
        return InvoiceSchedule(self.credit_type_id, items, self.do_not_invoice)


class SpecifierIn(StrictModel):
    product_id: NonEmpty | None = None
    product_tags: list[NonEmpty] | None = None
    pricing_group_values: dict[str, NonEmpty] | None = None
    presentation_group_values: dict[str, NonEmpty] | None = None

    def specifier(self) -> Specifier:
        tags = None if self.product_tags is None else tuple(self.product_tags)
        return Specifier(self.product_id, tags, self.pricing_group_values, self.presentation_group_values)


class ScopeIn(Protocol):
    """A request model that says which products a commit or credit applies to."""

    @property
    def applicable_product_ids(self) -> list[str] | None: ...
    @property
    def applicable_product_tags(self) -> list[str] | None: ...
    @property
    def specifiers(self) -> list[SpecifierIn] | None: ...


def product_scope(given: ScopeIn) -> ProductScope:
    """`applicable_product_ids`, `applicable_product_tags` and `specifiers` as the rules take them
    (None where not given), for commits, credits, recurring ones and threshold recharges alike."""
    specifiers = given.specifiers
    return ProductScope(
        applicable_product_ids=tuple_or_none(given.applicable_product_ids),
        applicable_product_tags=tuple_or_none(given.applicable_product_tags),
        specifiers=None if specifiers is None else tuple(s.specifier() for s in specifiers),
    )


class CommitFields(StrictModel):
    """What every commit and credit has, wherever it is created."""

    product_id: str
    access_schedule: AccessScheduleIn
    name: Name | None = None
    description: str | None = None
    priority: FiniteAmount | None = None
    applicable_product_ids: list[NonEmpty] | None = Field(default=None, max_length=MAX_ITEMS)
    applicable_product_tags: list[NonEmpty] | None = Field(default=None, max_length=MAX_ITEMS)
    specifiers: list[SpecifierIn] | None = Field(default=None, max_length=MAX_ITEMS)
    rate_type: Literal["COMMIT_RATE", "LIST_RATE"] = "LIST_RATE"
    custom_fields: CustomFields = Field(default_factory=dict)
    uniqueness_key: UniquenessKey | None = None
    netsuite_sales_order_id: NotSupported = None

    _list_rate_only = field_validator("rate_type", mode="before")(refuse_commit_rate)

    def new_commit(
        self,
        kind: str,
        path: str = "",
        invoice_schedule: InvoiceScheduleIn | None = None,
        *,
        invoice_contract_id: str | None = None,
        amount: Decimal | None = None,
        rollover_fraction: Decimal | None = None,
    ) -> NewCommit:
        return NewCommit(
            kind=kind,
            product_id=self.product_id,
            access=self.access_schedule.items(),
            credit_type_id=self.access_schedule.credit_type_id,
            invoice=invoice_schedule.schedule(path) if invoice_schedule is not None else None,
            name=self.name,
            description=self.description,
            priority=self.priority,
            **product_scope(self),
            custom_fields=self.custom_fields,
            uniqueness_key=self.uniqueness_key,
            invoice_contract_id=invoice_contract_id,
            amount=amount,
            rollover_fraction=rollover_fraction,
        )


class ContractCommitIn(CommitFields):
    type: CommitType
    invoice_schedule: InvoiceScheduleIn | None = None
    amount: PositiveAmount | None = None  # deprecated; see domain/commit_rules.check_amount_shorthand
    hierarchy_configuration: NotSupported = None
    rollover_fraction: Fraction | None = None  # rolls over when the contract transitions
    spend_tracker_attributes: NotSupported = None
    temporary_id: NotSupported = None

    @field_validator("type", mode="before")
    @classmethod
    def _upper_type(cls, value: Any) -> Any:
        return upper(value)

    def new(self, path: str) -> NewCommit:
        if self.type == POSTPAID and self.rollover_fraction is not None:
            # What a postpaid commit leaves unused is what its true-up bills; rolling it over instead
            # is not built.
            raise InvalidInput(
                f"{field_path(path, 'rollover_fraction')}: meterline rolls over PREPAID commits and "
                "credits only (a POSTPAID commit's unused part is billed by its true-up)"
            )
        return self.new_commit(
            self.type,
            path,
            self.invoice_schedule,
            amount=self.amount,
            rollover_fraction=self.rollover_fraction,
        )


class ContractCreditIn(CommitFields):
    hierarchy_configuration: NotSupported = None
    rollover_fraction: Fraction | None = None  # rolls over when the contract transitions

    def new(self, path: str) -> NewCommit:
        return self.new_commit(CREDIT, path, rollover_fraction=self.rollover_fraction)


class CustomerLevelFields(CommitFields):
    """Customer-level commits and credits: a customer, and a priority (Metronome requires one)."""

    customer_id: str
    priority: FiniteAmount
    # A commit for some of the customer's contracts only; empty (every contract) is accepted.
    applicable_contract_ids: NotSupportedUnlessEmpty = None
    salesforce_opportunity_id: NotSupported = None


class CustomerCommitCreate(CustomerLevelFields):
    type: CommitType
    invoice_schedule: InvoiceScheduleIn | None = None
    invoice_contract_id: str | None = None

    @field_validator("type", mode="before")
    @classmethod
    def _upper_type(cls, value: Any) -> Any:
        return upper(value)

    def new(self) -> NewCommit:
        return self.new_commit(
            self.type, "", self.invoice_schedule, invoice_contract_id=self.invoice_contract_id
        )


class ScheduledChargeIn(StrictModel):
    """A FIXED product billed on its schedule's dates (contracts/create `scheduled_charges`)."""

    product_id: NonEmpty
    schedule: InvoiceScheduleIn
    name: Name | None = None
    custom_fields: CustomFields = Field(default_factory=dict)
    netsuite_sales_order_id: NotSupported = None

    def new(self, path: str) -> NewScheduledCharge:
        return NewScheduledCharge(
            self.product_id, self.schedule.schedule(path, "schedule"), self.name, self.custom_fields
        )


class CustomerCreditCreate(CustomerLevelFields):
    def new(self) -> NewCommit:
        return self.new_commit(CREDIT)


def tuple_or_none(values: list[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)
