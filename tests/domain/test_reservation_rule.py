"""The rule for granting a reservation (`domain.reservations`): whatever the order and sizes of the
asks, what is granted, added to spend, never passes the hard limit, and an ask that fits is never
refused."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from meterline.domain.reservations import WOULD_PASS_HARD_LIMIT, decide

amounts = st.decimals(min_value=Decimal("0.01"), max_value=10**7, places=2)


@given(
    limit=st.decimals(min_value=0, max_value=10**8, places=2),
    spend=st.decimals(min_value=0, max_value=2 * 10**8, places=2),
    asks=st.lists(amounts, max_size=60),
)
def test_grants_in_turn_never_pass_the_limit_and_every_fitting_ask_is_granted(
    limit: Decimal, spend: Decimal, asks: list[Decimal]
) -> None:
    held: list[Decimal] = []
    for amount in asks:
        answer = decide(amount, limit, spend, held)
        fits = spend + sum(held, Decimal(0)) + amount <= limit
        assert answer.granted is fits
        assert answer.reason == (None if fits else WOULD_PASS_HARD_LIMIT)
        if answer.granted:
            held.append(amount)
        assert answer.remaining == max(limit - spend - sum(held, Decimal(0)), Decimal(0))
    assert not held or spend + sum(held, Decimal(0)) <= limit


@given(spend=st.decimals(min_value=0, max_value=10**9, places=2), amount=amounts)
def test_without_a_hard_limit_everything_is_granted_and_nothing_is_remaining(
    spend: Decimal, amount: Decimal
) -> None:
    answer = decide(amount, None, spend, [amount])
    assert (answer.granted, answer.reason, answer.remaining) == (True, None, None)
