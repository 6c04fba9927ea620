"""Threshold billing: a contract buys a commit when what its customer owes, or has left, crosses
a threshold.

- Spend threshold (`spend_threshold_configuration`): once the contract's unpaid spend (its open
  usage invoice's total after drawdown) reaches `threshold_amount`, the customer buys a commit of
  exactly that unpaid amount, accessible over the invoice's period, which pays that usage: the
  usage invoice falls back to zero and its spend is billed at once, on the commit's invoice.
- Prepaid balance threshold (`prepaid_balance_threshold_configuration`): once the contract's
  prepaid balance (its commits' and credits' balances accessible now) falls to
  `threshold_amount`, the customer buys a commit of `recharge_to_amount - balance`, accessible
  from the hour it was bought for `duration` (a year unless given): the balance is back at
  `recharge_to_amount`.

Each bought commit carries one invoice schedule item, dated when it was bought, which bills it
(payment gate NONE: the commit is released without waiting for a payment). Amounts are in the
contract's fiat pricing unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from meterline.domain.billing_periods import add_months
from meterline.domain.timeutil import US_PER_DAY, from_us, to_us

if TYPE_CHECKING:  # commit_rules imports domain.contracts, which holds these configs
    from meterline.domain.commit_rules import Specifier

DEFAULT_PRIORITY = Decimal(100)  # Metronome's default for threshold commits
DURATION_UNITS = ("DAYS", "WEEKS", "MONTHS", "YEARS")
SPEND = "SPEND"
PREPAID_BALANCE = "PREPAID_BALANCE"
# Where each configuration is in a contract's request and views.
FIELDS = {SPEND: "spend_threshold_configuration", PREPAID_BALANCE: "prepaid_balance_threshold_configuration"}


@dataclass(frozen=True, slots=True)
class ThresholdCommit:
    """What every bought commit is: its product (the invoice line), name and drawdown terms."""

    product_id: str
    name: str | None = None
    description: str | None = None
    priority: Decimal | None = None  # None: DEFAULT_PRIORITY
    applicable_product_ids: tuple[str, ...] | None = None
    applicable_product_tags: tuple[str, ...] | None = None
    specifiers: tuple[Specifier, ...] | None = None
    duration_unit: str = "YEARS"  # prepaid balance only: how long a recharge stays accessible
    duration_value: int = 1
    rollover_fraction: Decimal | None = None  # prepaid balance only: what a recharge rolls over

    @property
    def priority_in_force(self) -> Decimal:
        return DEFAULT_PRIORITY if self.priority is None else self.priority

    def access_end(self, start_us: int) -> int:
        """Where a recharge bought at `start_us` stops being accessible."""
        if self.duration_unit in ("DAYS", "WEEKS"):
            days = self.duration_value * (7 if self.duration_unit == "WEEKS" else 1)
            return start_us + days * US_PER_DAY
        months = self.duration_value * (12 if self.duration_unit == "YEARS" else 1)
        return to_us(add_months(from_us(start_us), months))


@dataclass(frozen=True, slots=True)
class ThresholdConfig:
    kind: str  # SPEND or PREPAID_BALANCE
    commit: ThresholdCommit
    is_enabled: bool
    threshold_amount: Decimal
    recharge_to_amount: Decimal | None = None  # PREPAID_BALANCE only
    payment_gate_type: str = "NONE"

    def charge(self, measured: Decimal) -> Decimal | None:
        """The amount of the commit to buy when the measure is `measured` (unpaid spend, or the
        prepaid balance), or None when the threshold is not reached or the config is off."""
        if not self.is_enabled:
            return None
        if self.kind == SPEND:
            return measured if measured >= self.threshold_amount and measured > 0 else None
        assert self.recharge_to_amount is not None
        if measured > self.threshold_amount:
            return None
        return self.recharge_to_amount - measured
