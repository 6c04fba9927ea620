"""The subscription charges of a contract, priced (`domain.subscriptions` says what each period
owes; `domain.invoicing.subscription_line` prices it): those on its usage invoices, and the
increases billed at once (BILL_IMMEDIATELY) on SCHEDULED invoices of their own.

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
from meterline.domain.subscriptions import PeriodCharge, SubscriptionTerms, immediate_charges, invoice_charges
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
        schedule = contract.subscription_schedule(subscription)
        for charge in invoice_charges(subscription, schedule, period.start_us, period.end_us):
            line = _priced(catalog, contract, card, subscription, charge)
            if line is not None:
                lines.append(line)
    return lines


def immediate_invoices(
    catalog: PricingCatalog, contract: ContractTerms, closed_ids: set[str], now_us: int
) -> Iterator[InvoiceRecord]:
    """The drafts of the contract's increases billed at once that no closed invoice billed."""
    card = catalog.rate_card(contract.rate_card_id)
    conversions = {c.custom_credit_type_id: c.fiat_per_custom_credit for c in card.conversions}
    for subscription in contract.subscriptions:
        schedule = contract.subscription_schedule(subscription)
        for charge in immediate_charges(subscription, schedule):
            invoice_id = immediate_invoice_id(subscription.id, charge.start_us)
            line = _priced(catalog, contract, card, subscription, charge)
            if line is None or invoice_id in closed_ids:
                continue
            computation = compute_invoice([line], [], card.fiat_credit_type_id, conversions)
            yield invoices.computed_draft(
                invoice_id,
                contract.customer_id,
                contract.id,
                card.fiat_credit_type_id,
                SCHEDULED,
                charge.start_us,
                charge.start_us,
                computation,
                now_us,
            )


def immediate_invoice_id(subscription_id: str, increase_at_us: int) -> str:
    return invoices.scheduled_invoice_id(f"subscription:{subscription_id}:{increase_at_us}")


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
