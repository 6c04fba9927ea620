"""Rules a commit or credit must follow when it is created: its access schedule, its invoice
schedule, and which products it applies to.

Every check names the field it refuses by its path in the request. `path` is the prefix of the
commit in the request ("commits.2" inside a contract, "" for a customer-level commit), so an
error in the third commit of a contract says which commit, schedule item and field is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext
from typing import Protocol, TypedDict

from meterline.domain.contracts import POSTPAID, PREPAID
from meterline.domain.errors import InvalidInput
from meterline.domain.seats import SeatScope

# Enough digits that unit_price x quantity of two bounded request numbers is never rounded.
_EXACT = Context(prec=100)


def field_path(path: str, *names: str | int) -> str:
    """`field_path("commits.0", "access_schedule", "schedule_items", 1)` -> commits.0.access_schedule..."""
    parts = [path] if path else []
    return ".".join([*parts, *(str(n) for n in names)])


@dataclass(frozen=True, slots=True)
class AccessItem:
    """One access schedule item: `amount` may be drawn down over [starting_at, ending_before)."""

    amount: Decimal
    starting_at_us: int
    ending_before_us: int
    seat: SeatScope | None = None  # set: one seat's own balance (INDIVIDUAL allocation)


@dataclass(frozen=True, slots=True)
class InvoiceItem:
    """One invoice schedule item, normalised: amount = unit_price x quantity, all three known."""

    timestamp_us: int
    amount: Decimal
    unit_price: Decimal
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class InvoiceSchedule:
    credit_type_id: str
    items: tuple[InvoiceItem, ...]
    do_not_invoice: bool = False

    @property
    def bills(self) -> bool:
        """Whether the schedule ever produces an invoice (the commit is paid for)."""
        return bool(self.items) and not self.do_not_invoice

    @property
    def total(self) -> Decimal:
        return sum((item.amount for item in self.items), Decimal(0))


@dataclass(frozen=True, slots=True)
class Specifier:
    """A commit specifier: usage matching every given field draws the commit down."""

    product_id: str | None = None
    product_tags: tuple[str, ...] | None = None
    pricing_group_values: dict[str, str] | None = None
    presentation_group_values: dict[str, str] | None = None

    def is_empty(self) -> bool:
        return not (
            self.product_id
            or self.product_tags
            or self.pricing_group_values
            or self.presentation_group_values
        )


class ProductScope(TypedDict):
    """What a commit or credit applies to: `applicable_product_ids`, `applicable_product_tags` and
    `specifiers` (None where not given)."""

    applicable_product_ids: tuple[str, ...] | None
    applicable_product_tags: tuple[str, ...] | None
    specifiers: tuple[Specifier, ...] | None


class Scoped(Protocol):
    """Anything that says which products it applies to (a recurring commit, a threshold recharge)."""

    @property
    def applicable_product_ids(self) -> tuple[str, ...] | None: ...
    @property
    def applicable_product_tags(self) -> tuple[str, ...] | None: ...
    @property
    def specifiers(self) -> tuple[Specifier, ...] | None: ...


def check_access_items(items: Sequence[AccessItem], path: str) -> None:
    where = field_path(path, "access_schedule", "schedule_items")
    if not items:
        raise InvalidInput(f"{where}: must hold at least one schedule item")
    for index, item in enumerate(items):
        if item.amount <= 0:
            raise InvalidInput(f"{field_path(where, index, 'amount')}: must be greater than 0")
        if item.ending_before_us <= item.starting_at_us:
            raise InvalidInput(f"{field_path(where, index, 'ending_before')}: must be after starting_at")


def invoice_item(
    timestamp_us: int,
    amount: Decimal | None,
    unit_price: Decimal | None,
    quantity: Decimal | None,
    where: str,
) -> InvoiceItem:
    """Metronome takes either `amount` (quantity 1) or `unit_price` with `quantity`, never both."""
    if amount is not None:
        if unit_price is not None or quantity is not None:
            raise InvalidInput(f"{where}.amount: give either amount or unit_price with quantity, not both")
        return InvoiceItem(timestamp_us, amount, amount, Decimal(1))
    if unit_price is None or quantity is None:
        raise InvalidInput(f"{where}: give either amount or both unit_price and quantity")
    with localcontext(_EXACT):
        total = unit_price * quantity
    return InvoiceItem(timestamp_us, total, unit_price, quantity)


def check_invoice_schedule(schedule: InvoiceSchedule, path: str) -> None:
    if not schedule.items:
        where = field_path(path, "invoice_schedule", "schedule_items")
        raise InvalidInput(f"{where}: must hold at least one schedule item")


def check_commit_schedules(
    kind: str,
    access: Sequence[AccessItem],
    access_credit_type_id: str,
    invoice: InvoiceSchedule | None,
    path: str,
) -> None:
    """The access and invoice schedules of a commit (PREPAID or POSTPAID) or credit (CREDIT)."""
    check_access_items(access, path)
    if invoice is not None:
        if kind not in (PREPAID, POSTPAID):
            raise InvalidInput(
                f"{field_path(path, 'invoice_schedule')}: only commits have an invoice schedule"
            )
        check_invoice_schedule(invoice, path)
    if kind == POSTPAID:
        check_postpaid(access, access_credit_type_id, invoice, path)


def check_postpaid(
    access: Sequence[AccessItem], access_credit_type_id: str, invoice: InvoiceSchedule | None, path: str
) -> None:
    """A postpaid commit is trued up once, at its invoice item, for the one amount it grants
    (Metronome: one access item, one invoice item, the same amount). The true-up bills what usage
    in the access schedule left unused, so meterline also wants it dated at or after the access
    schedule's end: before it, the unused part is not known yet."""
    if invoice is None:
        raise InvalidInput(f"{field_path(path, 'invoice_schedule')}: is required for POSTPAID commits")
    if len(access) != 1:
        where = field_path(path, "access_schedule", "schedule_items")
        raise InvalidInput(f"{where}: a POSTPAID commit has exactly one access schedule item")
    if len(invoice.items) != 1:
        where = field_path(path, "invoice_schedule", "schedule_items")
        raise InvalidInput(f"{where}: a POSTPAID commit has exactly one invoice schedule item")
    if invoice.credit_type_id != access_credit_type_id:
        where = field_path(path, "invoice_schedule", "credit_type_id")
        raise InvalidInput(f"{where}: a POSTPAID commit is invoiced in its access schedule's credit type")
    if invoice.items[0].amount != access[0].amount:
        where = field_path(path, "invoice_schedule", "schedule_items", 0, "amount")
        raise InvalidInput(
            f"{where}: must equal the access schedule amount {access[0].amount} for a POSTPAID commit"
        )
    if invoice.bills and invoice.items[0].timestamp_us < access[0].ending_before_us:
        where = field_path(path, "invoice_schedule", "schedule_items", 0, "timestamp")
        raise InvalidInput(
            f"{where}: a POSTPAID commit's true-up is invoiced at or after its access schedule's "
            "ending_before (what usage left unused is known only then)"
        )


def check_amount_shorthand(amount: Decimal | None, access: Sequence[AccessItem], path: str) -> None:
    """The deprecated `amount` is accepted only where it says nothing the schedules do not.

    Metronome derives schedules from it in forms it does not document; meterline will not guess,
    so it must equal the access schedule's total.
    """
    if amount is None:
        return
    total = sum((item.amount for item in access), Decimal(0))
    if amount != total:
        raise InvalidInput(
            f"{field_path(path, 'amount')}: is deprecated; meterline accepts it only equal to the "
            f"access schedule's total ({total}); give access_schedule and invoice_schedule instead"
        )


def check_targets(
    applicable_product_ids: Sequence[str] | None,
    applicable_product_tags: Sequence[str] | None,
    specifiers: Sequence[Specifier] | None,
    path: str,
) -> None:
    """Specifiers replace applicable_product_ids/tags; Metronome refuses both together."""
    if specifiers and (applicable_product_ids or applicable_product_tags):
        raise InvalidInput(
            f"{field_path(path, 'specifiers')}: cannot be used together with "
            "applicable_product_ids or applicable_product_tags"
        )
    for index, specifier in enumerate(specifiers or ()):
        if specifier.is_empty():
            raise InvalidInput(
                f"{field_path(path, 'specifiers', index)}: give at least one of product_id, "
                "product_tags, pricing_group_values or presentation_group_values"
            )


def is_paid(kind: str, invoice_bills: bool) -> bool:
    """A prepaid commit whose invoice schedule bills is paid for; credits and complimentary
    commits are free, and a postpaid commit is paid at its true-up, not up front."""
    return kind == PREPAID and invoice_bills
