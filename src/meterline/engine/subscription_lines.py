"""The subscription charges of a contract, priced (`domain.subscriptions` says what each period
owes; `domain.invoicing.subscription_line` prices it): those on its usage invoices, those of a
subscription placed ON_SCHEDULED_INVOICE on SCHEDULED invoices of its own, and the increases
billed at once (BILL_IMMEDIATELY) on SCHEDULED invoices of their own.

A subscription placed ON_SCHEDULED_INVOICE has one SCHEDULED invoice per date its charges are
billed on (a period's start for a charge in advance, its end for the rest: one invoice when they
meet), its id stable (the subscription and the date): a draft from the start of the period that
first bills on it, finalized on its date by the engine's clock. The customer is woken when each
of its periods starts (`next_period_starts`), so that its draft is there whether usage arrives
or not.

An increase billed at once has one invoice, its id stable (the subscription and the increase's
instant), dated at the increase: a draft as soon as the change is made, finalized on that date
by the engine's clock like any SCHEDULED invoice, so it is billed once whatever restarts. No
commit or credit draws it down (as a SCHEDULED invoice's lines are not).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from meterline.domain.contracts import ContractTerms
from meterline.domain.invoicing import UsageLine, compute_invoice, subscription_line
from meterline.domain.periods import Period
from meterline.domain.subscriptions import (
    PeriodCharge,
    SubscriptionTerms,
    immediate_charges,
    invoice_charges,
    next_period_start,
    scheduled_invoice_charges,
)
from meterline.store import invoices
from meterline.store.invoices import SCHEDULED, InvoiceRecord
from meterline.store.rate_cards import RateCardRecord

if TYPE_CHECKING:  # billing.py calls this module with its catalog
    from meterline.engine.billing import PricingCatalog


def subscription_lines(
    catalog: PricingCatalog, contract: ContractTerms, card: RateCardRecord, period: Period
) -> list[UsageLine]:
    """What the contract's usage invoice of `period` bills for its subscriptions, priced."""
    lines: list[UsageLine] = []
    for subscription in contract.subscriptions:
        if subscription.on_own_invoices:
            continue
        schedule = contract.subscription_schedule(subscription)
        for charge in invoice_charges(subscription, schedule, period.start_us, period.end_us):
            line = _priced(catalog, contract, card, subscription, charge)
            if line is not None:
                lines.append(line)
    return lines


def own_invoices(
    catalog: PricingCatalog, contract: ContractTerms, closed_ids: set[str], since_us: int, now_us: int
) -> Iterator[InvoiceRecord]:
    """The SCHEDULED drafts of the contract's subscriptions that no closed invoice billed: the
    increases billed at once, and the charges of subscriptions placed ON_SCHEDULED_INVOICE of
    their periods overlapping [since, now]."""
    card = catalog.rate_card(contract.rate_card_id)
    for subscription in contract.subscriptions:
        schedule = contract.subscription_schedule(subscription)
        dated = {
            immediate_invoice_id(subscription.id, c.start_us): (c.start_us, [c])
            for c in immediate_charges(subscription, schedule)
        }
        if subscription.on_own_invoices:
            found = scheduled_invoice_charges(subscription, schedule, since_us, now_us)
            dated.update({placed_invoice_id(subscription.id, d): (d, c) for d, c in found.items()})
        for invoice_id, (date_us, charges) in dated.items():
            if invoice_id in closed_ids:
                continue
            priced = [_priced(catalog, contract, card, subscription, c) for c in charges]
            lines = [line for line in priced if line is not None]
            if lines:
                yield _draft(contract, card, invoice_id, date_us, lines, now_us)


def next_period_starts(contract: ContractTerms, now_us: int) -> Iterator[int]:
    """When each subscription placed ON_SCHEDULED_INVOICE next starts a period (its draft appears)."""
    for subscription in contract.subscriptions:
        if subscription.on_own_invoices:
            found = next_period_start(subscription, contract.subscription_schedule(subscription), now_us)
            if found is not None:
                yield found


def _draft(
    contract: ContractTerms,
    card: RateCardRecord,
    invoice_id: str,
    date_us: int,
    lines: list[UsageLine],
    now_us: int,
) -> InvoiceRecord:
    conversions = {c.custom_credit_type_id: c.fiat_per_custom_credit for c in card.conversions}
    computation = compute_invoice(lines, [], card.fiat_credit_type_id, conversions)
    return invoices.computed_draft(
        invoice_id,
        contract.customer_id,
        contract.id,
        card.fiat_credit_type_id,
        SCHEDULED,
        date_us,
        date_us,
        computation,
        now_us,
    )


def immediate_invoice_id(subscription_id: str, increase_at_us: int) -> str:
    return invoices.scheduled_invoice_id(f"subscription:{subscription_id}:{increase_at_us}")


def placed_invoice_id(subscription_id: str, date_us: int) -> str:
    return invoices.scheduled_invoice_id(f"subscription-invoice:{subscription_id}:{date_us}")


def _priced(
    catalog: PricingCatalog,
    contract: ContractTerms,
    card: RateCardRecord,
    subscription: SubscriptionTerms,
    charge: PeriodCharge,
) -> UsageLine | None:
    at_us = charge.start_us
    product = catalog.products((subscription.product_id,), at_us).get(subscription.product_id)
    if product is None:
        return None
    overrides = [
        o.as_override()
        for o in contract.overrides
        if o.in_force(at_us) and o.applies_to(product, subscription.billing_frequency)
    ]
    return subscription_line(
        subscription,
        charge,
        product,
        catalog.rates(card.id, at_us),
        overrides,
        contract.explicit_override_priority,
    )
