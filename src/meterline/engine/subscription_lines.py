"""The subscription charges on one usage invoice of a contract, priced (`domain.subscriptions`
says what each period owes; `domain.invoicing.subscription_line` prices it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from meterline.domain.contracts import ContractTerms
from meterline.domain.invoicing import UsageLine, subscription_line
from meterline.domain.periods import Period
from meterline.domain.subscriptions import invoice_charges
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
            at_us = charge.start_us
            product = catalog.products((subscription.product_id,), at_us).get(subscription.product_id)
            if product is None:
                continue
            overrides = [
                o.as_override()
                for o in contract.overrides
                if o.in_force(at_us) and o.applies_to(product, subscription.billing_frequency)
            ]
            line = subscription_line(
                subscription,
                charge,
                product,
                catalog.rates(card.id, at_us),
                overrides,
                contract.explicit_override_priority,
            )
            if line is not None:
                lines.append(line)
    return lines
