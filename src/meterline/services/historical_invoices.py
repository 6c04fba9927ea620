"""Historical invoices (contracts/createHistoricalInvoices): billing history moved over from
elsewhere, as FINALIZED usage invoices priced by the contract.

Each invoice is one billing period of its contract, in the past, that has no invoice yet (no
draft either: a period meterline bills from usage is not billed twice). Its lines are quantities
of products, priced at the contract's rates at the period's start with its overrides applied, as
`getContractRateSchedule` shows them; they draw on no commit or credit (what was paid elsewhere is
not taken from balances here). Stored under the period's own invoice id, the invoice closes the
period exactly as one the engine finalized: usage sent there later is refused, and no draft is
derived for it. With `preview` nothing is stored. All or nothing; errors name the invoice and line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Connection

from meterline.domain.errors import Conflict, InvalidInput, NotFound
from meterline.domain.invoicing import UsageLine, compute_invoice
from meterline.domain.periods import Period
from meterline.domain.timeutil import format_rfc3339
from meterline.engine.billing import finalized_record, period_record
from meterline.services.rate_schedules import ContractRate, contract_schedule
from meterline.store import contracts, credit_types, partitions, rate_cards
from meterline.store import invoices as store
from meterline.store.billing_requests import request_recompute
from meterline.store.contracts import ContractRecord
from meterline.store.invoices import DRAFT, InvoiceRecord


@dataclass(frozen=True, slots=True)
class HistoricalLine:
    product_id: str
    start_us: int
    end_us: int
    quantity: Decimal
    pricing_group_values: Mapping[str, str] = field(default_factory=dict)
    presentation_group_values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HistoricalInvoice:
    customer_id: str
    contract_id: str
    credit_type_id: str
    start_us: int
    end_us: int
    issued_us: int
    lines: tuple[HistoricalLine, ...]


def create_historical_invoices(
    conn: Connection, given: Sequence[HistoricalInvoice], now_us: int, *, preview: bool
) -> list[InvoiceRecord]:
    names = credit_types.names_by_id(conn)
    made: list[InvoiceRecord] = []
    for index, wanted in enumerate(given):
        path = f"invoices.{index}"
        record = _priced(conn, wanted, path, now_us, names)
        if any(m.id == record.id for m in made):
            raise InvalidInput(f"{path}: the same billing period as an earlier invoice of this request")
        made.append(record)
    if not preview:
        for record in made:
            partitions.lock_home_partition(conn, record.customer_id)
        store.finalize(conn, [(record, []) for record in made])
        for customer_id in sorted({r.customer_id for r in made}):
            request_recompute(conn, customer_id)
    return made


def _priced(
    conn: Connection, wanted: HistoricalInvoice, path: str, now_us: int, names: dict[str, str]
) -> InvoiceRecord:
    contract = _contract(conn, wanted, path)
    card = rate_cards.get_rate_card(conn, contract.rate_card_id)
    if wanted.credit_type_id != card.fiat_credit_type_id:
        raise InvalidInput(
            f"{path}.credit_type_id: must be the contract's invoicing unit, {card.fiat_credit_type_id}"
        )
    _check_period(conn, contract, wanted, path, now_us)
    rates = contract_schedule(conn, wanted.customer_id, wanted.contract_id, wanted.start_us, None)
    lines = [
        _line(rates, line, wanted, f"{path}.usage_line_items.{index}")
        for index, line in enumerate(wanted.lines)
    ]
    conversions = {c.custom_credit_type_id: c.fiat_per_custom_credit for c in card.conversions}
    computation = compute_invoice(lines, [], card.fiat_credit_type_id, conversions)
    period = Period(wanted.start_us, wanted.end_us)
    draft = period_record(contract.terms(), period, card, computation, now_us)
    return finalized_record(draft, names, wanted.issued_us)


def _contract(conn: Connection, wanted: HistoricalInvoice, path: str) -> ContractRecord:
    try:
        contract = contracts.get_contract(conn, wanted.customer_id, wanted.contract_id)
    except NotFound as missing:
        raise NotFound(f"{path}.{missing.message}") from None
    if contract.archived_at_us is not None:
        raise InvalidInput(f"{path}.contract_id: contract {contract.id} is archived")
    return contract


def _check_period(
    conn: Connection, contract: ContractRecord, wanted: HistoricalInvoice, path: str, now_us: int
) -> None:
    if wanted.end_us > now_us:
        raise InvalidInput(f"{path}.exclusive_end_date: a historical invoice's period must be over")
    if wanted.issued_us > now_us:
        raise InvalidInput(f"{path}.issue_date: must not be in the future")
    holding = contract.statement_schedule().periods_between(wanted.start_us, wanted.start_us + 1)
    if not holding or (holding[0].start_us, holding[0].end_us) != (wanted.start_us, wanted.end_us):
        shown = (
            f"; the one holding inclusive_start_date is {format_rfc3339(holding[0].start_us)} to "
            f"{format_rfc3339(holding[0].end_us)}"
            if holding
            else ""
        )
        raise InvalidInput(f"{path}.inclusive_start_date: must start a billing period of the contract{shown}")
    existing = store.get_invoice(conn, store.invoice_id(contract.id, wanted.start_us))
    if existing is not None and existing.status == DRAFT:
        raise InvalidInput(
            f"{path}.inclusive_start_date: meterline bills this period from usage already (its draft is open)"
        )
    if existing is not None:
        raise Conflict(
            f"{path}.inclusive_start_date: the period has a {existing.status} invoice already, {existing.id}"
        )


def _line(
    rates: Sequence[ContractRate], line: HistoricalLine, wanted: HistoricalInvoice, path: str
) -> UsageLine:
    if not (wanted.start_us <= line.start_us < line.end_us <= wanted.end_us):
        raise InvalidInput(f"{path}.inclusive_start_date: the line must lie within the invoice's period")
    found = next(
        (
            r
            for r in rates
            if r.rate.product_id == line.product_id
            and dict(r.rate.pricing_group_values) == dict(line.pricing_group_values)
        ),
        None,
    )
    if found is None:
        raise InvalidInput(
            f"{path}.product_id: the contract has no rate for product {line.product_id}"
            " (with these pricing_group_values) at the invoice's start"
        )
    if not found.entitled:
        raise InvalidInput(f"{path}.product_id: the contract is not entitled to product {line.product_id}")
    if found.product.type == "SUBSCRIPTION":  # priced per billing frequency: no usage line prices it
        raise InvalidInput(
            f"{path}.product_id: {line.product_id} is a SUBSCRIPTION product; meterline does not move "
            "subscription charges over yet"
        )
    price = found.override_price or found.rate.price
    charge = price.charge(line.quantity)
    return UsageLine(
        product=found.product,
        credit_type_id=found.override_credit_type_id or found.rate.credit_type_id,
        quantity=line.quantity,
        unit_price=charge.unit_price,
        total=charge.total,
        start_us=line.start_us,
        end_us=line.end_us,
        pricing_group_values=dict(line.pricing_group_values),
        presentation_group_values=dict(line.presentation_group_values),
        tiers=charge.tiers,
        price=price,
    )
