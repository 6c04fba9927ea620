"""Drawing down commits and credits against an invoice's charges (Metronome's prioritization).

Rollover commits (what a contract's predecessor left unused) come first, then every other.
Order within each group (lower first): `priority`; then free credits (cost basis 0) before paid;
then fewest applicable products (the most specific balance first); then earliest end of access;
then earliest start; then id, so the order is total and stable. Each balance in turn covers
what it can of the charges it applies to, so no balance gives more than it holds and no charge
is left uncovered while a balance that applies to it still has something left.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class ChargeLine:
    key: str  # identifies the line item (e.g. product id + presentation group)
    product_id: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Balance:
    id: str
    kind: str  # "PREPAID", "POSTPAID" or "CREDIT"
    available: Decimal
    priority: Decimal
    is_free: bool
    applicable_product_count: int  # 0 means "every product"
    access_ends_us: int
    access_starts_us: int
    applies_to: Callable[[ChargeLine], bool]
    # Set: the only charges it may cover (keys, in the charges' order), e.g. one seat's usage,
    # so a balance per seat looks at its own charges, not at every seat's.
    among: tuple[str, ...] | None = None
    is_rollover: bool = False


@dataclass(frozen=True, slots=True)
class Application:
    balance_id: str
    kind: str
    charge_key: str
    amount: Decimal


def drawdown_order(balances: Sequence[Balance]) -> list[Balance]:
    def specificity(balance: Balance) -> float:
        return float("inf") if balance.applicable_product_count == 0 else balance.applicable_product_count

    return sorted(
        balances,
        key=lambda b: (
            0 if b.is_rollover else 1,
            b.priority,
            0 if b.is_free else 1,
            specificity(b),
            b.access_ends_us,
            b.access_starts_us,
            b.id,
        ),
    )


def draw_down(charges: Sequence[ChargeLine], balances: Sequence[Balance]) -> list[Application]:
    uncovered = {c.key: c.amount for c in charges}
    by_key = {c.key: c for c in charges}
    applications: list[Application] = []
    for balance in drawdown_order(balances):
        left = balance.available
        candidates = charges if balance.among is None else [by_key[k] for k in balance.among]
        for charge in candidates:
            if left <= 0:
                break
            need = uncovered[charge.key]
            if need <= 0 or not balance.applies_to(charge):
                continue
            taken = min(need, left)
            uncovered[charge.key] = need - taken
            left -= taken
            applications.append(Application(balance.id, balance.kind, charge.key, taken))
    return applications
