"""The rules of spend control, for any values: a spend notice's progress, access decisions, the
digest a stream resumes on, and which alerts may block."""

from __future__ import annotations

from decimal import Decimal, localcontext

from hypothesis import given
from hypothesis import strategies as st

from meterline.domain.access import (
    BLOCKING_ALERT,
    CUSTOMER_ARCHIVED,
    HARD_LIMIT_REACHED,
    UNKNOWN_CUSTOMER,
    Alarm,
    decide,
    fingerprint,
)
from meterline.domain.alerts import KINDS, AlertType, Measure, blocking_refusal, spend_progress

AMOUNTS = st.decimals(
    min_value=0, max_value=Decimal("1e30"), places=20, allow_nan=False, allow_infinity=False
)
SPEND = AlertType.SPEND_THRESHOLD_REACHED


@given(threshold=AMOUNTS, spend=AMOUNTS)
def test_progress_says_how_much_is_used_and_left(threshold: Decimal, spend: Decimal) -> None:
    progress = spend_progress(SPEND, threshold, spend)
    percent = progress["percent_used"]
    with localcontext() as exact:
        exact.prec = 200  # the arithmetic of the check itself, exact
        assert progress["remaining"] == max(threshold - spend, 0)
        if threshold == 0:
            assert percent is None
            return
        assert percent is not None and percent == percent.quantize(Decimal("0.01"))
        assert percent <= spend * 100 / threshold < percent + Decimal("0.01")
    # 100 (or more) exactly when the threshold is reached: the notice and the figure agree.
    assert (percent >= 100) == (spend >= threshold)


@given(threshold=AMOUNTS)
def test_no_measure_is_no_spend(threshold: Decimal) -> None:
    assert spend_progress(SPEND, threshold, None)["remaining"] == threshold


def test_only_spend_notices_carry_progress() -> None:
    for alert_type, kind in KINDS.items():
        carried = spend_progress(alert_type, Decimal(10), Decimal(5))
        assert bool(carried) == (kind.measure is Measure.SPEND), alert_type


def test_alerts_that_warn_ahead_of_time_or_concern_one_seat_cannot_block() -> None:
    for alert_type, kind in KINDS.items():
        assert (blocking_refusal(alert_type) is not None) == (kind.time_driven or kind.per_seat), alert_type


ALARMS = st.builds(
    Alarm,
    alert_id=st.uuids().map(str),
    threshold=AMOUNTS,
    value=st.none() | AMOUNTS,
    hard_limit=st.booleans(),
)


@given(known=st.booleans(), archived=st.booleans(), alarms=st.lists(ALARMS, max_size=4))
def test_access_unless_a_reason_denies_it(known: bool, archived: bool, alarms: list[Alarm]) -> None:
    decision = decide("ref", "id-1" if known else None, archived, alarms, 7)
    codes = [r.code for r in decision.reasons]
    if not known:
        assert codes == [UNKNOWN_CUSTOMER] and decision.resolved_id is None
    else:
        assert codes.count(CUSTOMER_ARCHIVED) == int(archived)
        assert sorted(r.alert_id for r in decision.reasons if r.alert_id) == sorted(
            a.alert_id for a in alarms
        )
        assert codes.count(HARD_LIMIT_REACHED) == sum(a.hard_limit for a in alarms)
        assert codes.count(BLOCKING_ALERT) == sum(not a.hard_limit for a in alarms)
    assert decision.has_access == (known and not archived and not alarms)
    assert (decision.customer_id, decision.as_of_us) == ("ref", 7)


@given(st.lists(st.tuples(st.booleans(), st.lists(ALARMS, max_size=2)), min_size=1, max_size=6), st.randoms())
def test_the_digest_depends_on_access_and_reasons_only(
    customers: list[tuple[bool, list[Alarm]]], shuffler: object
) -> None:
    decisions = [
        decide(f"c{i}", f"id{i}", archived, alarms, i) for i, (archived, alarms) in enumerate(customers)
    ]
    reordered = list(decisions)
    shuffler.shuffle(reordered)  # type: ignore[attr-defined]
    later = [decide(d.customer_id, d.resolved_id, False, (), d.as_of_us + 1000) for d in decisions]
    assert fingerprint(reordered) == fingerprint(decisions)
    # Measures and instants move without changing the digest; a change of access moves it.
    same_access = [
        decide(d.customer_id, d.resolved_id, False, [], d.as_of_us + 5) if d.has_access else d
        for d in decisions
    ]
    assert fingerprint(same_access) == fingerprint(decisions)
    if any(not d.has_access for d in decisions):
        assert fingerprint(later) != fingerprint(decisions)
