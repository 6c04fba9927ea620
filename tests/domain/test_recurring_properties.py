"""Properties of the commits a recurring commit creates (`domain.recurring`), over any cadence,
span, amount, proration and rounding."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from meterline.domain.billing_periods import AnchorDay, Frequency, schedule_for
from meterline.domain.recurring import (
    FIRST,
    FIRST_AND_LAST,
    LAST,
    NONE,
    Cadence,
    RecurringTerms,
    Rounding,
    cadence,
    grants,
    next_start,
    periods,
)
from meterline.domain.timeutil import US_PER_DAY, US_PER_HOUR

EPOCH_2030 = 1_893_456_000_000_000  # an instant to build on, not "now"
FREQUENCIES = ["MONTHLY", "QUARTERLY", "ANNUAL", "WEEKLY", "DAILY", None]


@st.composite
def recurring(draw: st.DrawFn) -> tuple[RecurringTerms, Cadence]:
    contract_start = EPOCH_2030 + draw(st.integers(0, 400)) * US_PER_DAY
    start = contract_start + draw(st.integers(0, 60 * 24)) * US_PER_HOUR
    end = start + draw(st.integers(1, 400 * 24)) * US_PER_HOUR
    frequency = draw(st.sampled_from(FREQUENCIES))
    statement = schedule_for(
        draw(st.sampled_from(list(Frequency))), AnchorDay.FIRST_OF_MONTH, contract_start, None
    )
    if frequency == "DAILY":
        end = min(end, start + 900 * US_PER_DAY)
    terms = RecurringTerms(
        amount=Decimal(draw(st.integers(1, 10**7))) / 100,
        starting_at_us=start,
        ending_before_us=end,
        duration_periods=draw(st.integers(1, 3)),
        proration=draw(st.sampled_from([NONE, FIRST, LAST, FIRST_AND_LAST])),
        rounding=Rounding(draw(st.integers(-2, 4)), draw(st.sampled_from(["HALF_UP", "FLOOR", "CEILING"]))),
    )
    return terms, cadence(frequency, start, statement)


@given(recurring())
def test_one_commit_per_period_and_the_periods_tile_the_span(case: tuple[RecurringTerms, Cadence]) -> None:
    terms, cad = case
    found = periods(cad, terms.starting_at_us, terms.ending_before_us)
    made = grants(terms, cad)
    assert [g.starting_at_us for g in made] == [kept.start_us for kept, _whole in found]
    assert found[0][0].start_us == terms.starting_at_us
    assert found[-1][0].end_us == terms.ending_before_us
    for (kept, whole), (following, _) in pairwise(found):
        assert kept.end_us == following.start_us == whole.end_us  # no gap, no overlap
    for kept, whole in found:
        assert whole.start_us <= kept.start_us < kept.end_us <= whole.end_us


@given(recurring())
def test_access_lasts_the_duration_in_periods_never_past_the_end(
    case: tuple[RecurringTerms, Cadence],
) -> None:
    terms, cad = case
    found = periods(cad, terms.starting_at_us, terms.ending_before_us)
    for index, grant in enumerate(grants(terms, cad)):
        last = min(index + terms.duration_periods, len(found)) - 1
        assert grant.ending_before_us == found[last][0].end_us <= terms.ending_before_us


@given(recurring())
def test_only_a_period_cut_where_proration_says_is_prorated_and_by_its_share_of_time(
    case: tuple[RecurringTerms, Cadence],
) -> None:
    terms, cad = case
    found = periods(cad, terms.starting_at_us, terms.ending_before_us)
    unit = Decimal(1).scaleb(-terms.rounding.decimal_places)
    for index, ((kept, whole), grant) in enumerate(zip(found, grants(terms, cad), strict=True)):
        cut = 0
        if index == 0 and terms.proration in (FIRST, FIRST_AND_LAST):
            cut += kept.start_us - whole.start_us
        if index == len(found) - 1 and terms.proration in (LAST, FIRST_AND_LAST):
            cut += whole.end_us - kept.end_us
        if cut == 0:
            assert grant.amount == terms.amount  # whole periods, and cuts not prorated, grant it all
            continue
        length = whole.end_us - whole.start_us
        exact = terms.amount * Decimal(length - cut) / Decimal(length)
        assert abs(grant.amount - exact) <= unit  # rounded to the unit asked for
        assert grant.amount % unit == 0
        if terms.rounding.method == "FLOOR":
            assert grant.amount <= exact
        if terms.rounding.method == "CEILING":
            assert grant.amount >= exact


@given(recurring(), st.integers(0, 500 * 24))
def test_an_open_ended_one_has_created_by_any_instant_the_periods_started_by_then(
    case: tuple[RecurringTerms, Cadence], hours: int
) -> None:
    terms, cad = case
    open_ended = replace(terms, ending_before_us=None)
    by = terms.starting_at_us + hours * US_PER_HOUR
    made = grants(open_ended, cad, by)
    following = next_start(open_ended, cad, by)
    assert following is not None and following > by  # it never ends
    # Exactly the periods started by `by`: the next one starts after it.
    assert [g.starting_at_us for g in made] == [
        kept.start_us for kept, _ in periods(cad, terms.starting_at_us, following)
    ]
    assert all(g.amount == terms.amount for g in made[1:])  # only a cut first period is prorated
    assert all(g.ending_before_us > g.starting_at_us for g in made)


@given(recurring(), st.integers(0, 10**7), st.sampled_from(["HALF_UP", "FLOOR", "CEILING"]))
def test_each_period_bills_its_invoice_amount_prorated_by_the_share_its_access_keeps(
    case: tuple[RecurringTerms, Cadence], cents: int, method: str
) -> None:
    terms, cad = case
    assert all(g.invoice_amount is None for g in grants(terms, cad))  # no invoice_amount: not billed
    invoice_rounding = Rounding(0, method)
    billed = replace(terms, invoice_amount=Decimal(cents) / 100, invoice_rounding=invoice_rounding)
    # The invoice is what the access would be for that amount and rounding: the same cuts, the same share.
    alike = replace(terms, amount=Decimal(cents) / 100, rounding=invoice_rounding)
    made, expected = grants(billed, cad), grants(alike, cad)
    assert [g.invoice_amount for g in made] == [g.amount for g in expected]
    assert [g.amount for g in made] == [g.amount for g in grants(terms, cad)]  # access is unchanged
