"""Properties of rolling a commit over at a contract transition (`domain.rollover`), and of the two
ledgers it leaves (`store.balances`): over any segment, amount drawn and fraction, the rolled
amount is the unused amount times the fraction exactly, never negative nor more than what was
unused, and what leaves the old commit is what the rollover commit starts with."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from meterline.domain.contracts import PREPAID, AccessSegment, CommitTerms
from meterline.domain.rollover import rolled_amount, rolled_segments, rolling_segments
from meterline.store.balances import Rollout, balance_of

HOUR = 3_600_000_000
ZERO = Decimal(0)

amounts = st.decimals(min_value=0, max_value=10**9, places=6, allow_nan=False, allow_infinity=False)
fractions = st.decimals(min_value=0, max_value=1, places=8, allow_nan=False, allow_infinity=False)


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=6, allow_nan=False), fractions)
def test_the_rolled_amount_is_the_unused_share_exactly(unused: Decimal, fraction: Decimal) -> None:
    rolled = rolled_amount(unused, fraction)
    assert rolled >= 0
    if unused <= 0:
        assert rolled == 0
    else:
        assert rolled == unused * fraction  # exact: no digit lost
        assert rolled <= unused


@st.composite
def drawn_segments(draw: st.DrawFn) -> tuple[AccessSegment, Decimal, int]:
    """A segment, what invoices drew from it (at most its amount), and a transition instant."""
    amount = draw(amounts)
    drawn = draw(st.decimals(min_value=0, max_value=amount, places=6, allow_nan=False))
    start = draw(st.integers(0, 100)) * HOUR
    end = start + draw(st.integers(1, 100)) * HOUR
    at = draw(st.integers(0, 250)) * HOUR
    return AccessSegment("old", amount, start, end), drawn, at


@given(drawn_segments(), fractions)
def test_only_a_segment_accessible_until_the_transition_rolls_over(
    given_segment: tuple[AccessSegment, Decimal, int], fraction: Decimal
) -> None:
    segment, drawn, at = given_segment
    rolled = rolled_segments([segment], {segment.id: drawn}, fraction, at)
    if segment.starting_at_us < at <= segment.ending_before_us:
        assert rolling_segments([segment], at) == [segment]
        expected = (segment.amount - drawn) * fraction
        assert rolled == ({segment.id: expected} if expected > 0 else {})
    else:
        assert rolled == {}


@given(drawn_segments(), fractions)
def test_the_old_and_the_new_ledgers_conserve_what_was_granted(
    given_segment: tuple[AccessSegment, Decimal, int], fraction: Decimal
) -> None:
    segment, drawn, _at = given_segment
    at = segment.ending_before_us  # a renewal: the new contract starts where the segment ends
    rolled = rolled_segments([segment], {segment.id: drawn}, fraction, at).get(segment.id, ZERO)
    old = CommitTerms("c-old", "cust", "k-old", PREPAID, "p", "usd", (segment,))
    deductions = [("c-old", segment.id, "inv", drawn, at)] if drawn > 0 else []
    rollouts = {segment.id: [Rollout(rolled, "k-new", at)]} if rolled > 0 else {}
    later = at + HOUR
    old_balance = balance_of(old, deductions, later, rollouts=rollouts)
    shown = {entry["type"]: entry["amount"] for entry in old_balance.ledger}
    assert sum(shown.values(), ZERO) == 0  # granted = drawn + rolled over + expired
    assert shown.get("PREPAID_COMMIT_ROLLOVER", ZERO) == -rolled
    assert old_balance.balance == 0
    if rolled > 0:
        new = CommitTerms(
            "c-new", "cust", "k-new", PREPAID, "p", "usd", (AccessSegment("new", rolled, at, at + 10 * HOUR),)
        )
        [start] = balance_of(new, [], later).ledger
        assert (start["type"], start["amount"]) == ("PREPAID_COMMIT_SEGMENT_START", rolled)
        assert -shown["PREPAID_COMMIT_ROLLOVER"] == start["amount"]
