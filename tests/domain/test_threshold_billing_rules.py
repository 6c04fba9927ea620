"""Properties of what a threshold buys (`domain.threshold_billing`), over any measure and terms."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from meterline.domain.threshold_billing import PREPAID_BALANCE, SPEND, ThresholdCommit, ThresholdConfig

amounts = st.integers(0, 10**9).map(lambda cents: Decimal(cents) / 100)
COMMIT = ThresholdCommit("product")


@given(amounts, amounts, amounts, st.booleans())
def test_a_recharge_brings_the_balance_back_to_its_target_only_at_or_below_the_threshold(
    balance: Decimal, threshold: Decimal, above: Decimal, enabled: bool
) -> None:
    target = threshold + above + Decimal("0.01")  # recharge_to_amount is above the threshold
    config = ThresholdConfig(PREPAID_BALANCE, COMMIT, enabled, threshold, recharge_to_amount=target)
    bought = config.charge(balance)
    if not enabled or balance > threshold:
        assert bought is None
    else:
        assert bought is not None and bought > 0
        assert balance + bought == target


@given(amounts, amounts.filter(lambda a: a > 0), st.booleans())
def test_unpaid_spend_at_or_above_the_threshold_is_bought_whole(
    unpaid: Decimal, threshold: Decimal, enabled: bool
) -> None:
    bought = ThresholdConfig(SPEND, COMMIT, enabled, threshold).charge(unpaid)
    if enabled and unpaid >= threshold:
        assert bought == unpaid  # the commit pays all of it: nothing is left owed
    else:
        assert bought is None
