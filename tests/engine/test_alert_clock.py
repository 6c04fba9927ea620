"""next_instant: when a customer's alerts next move with the clock alone (engine/alert_clock.py).

Measured on a customer snapshot, as the evaluator does: nothing is read from a database.
"""

from __future__ import annotations

from decimal import Decimal
from typing import cast

from sqlalchemy import Connection

from meterline.domain.alerts import AlertType
from meterline.domain.contracts import AccessSegment, CommitTerms, ContractTerms
from meterline.domain.timeutil import US_PER_DAY, US_PER_HOUR, month_bounds, now_us
from meterline.engine.alert_clock import next_instant
from meterline.engine.alert_measures import CustomerView
from meterline.engine.customer_state import CustomerState
from meterline.store.alerts import AlertRecord

NOW = now_us()
CUSTOMER = "customer"


def alert(alert_type: AlertType, threshold: int = 100) -> AlertRecord:
    return AlertRecord(
        id=f"alert-{alert_type.value}",
        name="alert",
        alert_type=alert_type,
        threshold=Decimal(threshold),
        credit_type_id=None,
        customer_id=CUSTOMER,
        billable_metric_id=None,
        invoice_types_filter=None,
        group_values=None,
        custom_field_filters=None,
        credit_grant_type_filters=None,
        evaluate_on_create=True,
        uniqueness_key=None,
        created_at_us=NOW - US_PER_DAY,
        updated_at_us=NOW - US_PER_DAY,
        archived_at_us=None,
    )


def contract(starting_at_us: int, ending_before_us: int | None) -> ContractTerms:
    return ContractTerms("contract", CUSTOMER, "rate-card", starting_at_us, ending_before_us)


def credit(*bounds: tuple[int, int]) -> CommitTerms:
    segments = tuple(AccessSegment(f"segment-{i}", Decimal(100), s, e) for i, (s, e) in enumerate(bounds))
    return CommitTerms("credit", CUSTOMER, None, "CREDIT", "product", "credit-type", segments)


def view(
    at_us: int, contracts: list[ContractTerms] | None = None, commits: list[CommitTerms] | None = None
) -> CustomerView:
    state = CustomerState(contracts or [], commits or [], [], [], set(), [], {}, None)
    # The snapshot holds everything the clock looks at: no connection is needed.
    return CustomerView(cast(Connection, None), CUSTOMER, at_us, state)


def test_alerts_that_do_not_move_with_the_clock_have_no_next_instant() -> None:
    assert next_instant([], view(NOW)) is None
    # A balance with no segment to start or end: nothing changes but by events.
    assert next_instant([alert(AlertType.LOW_CREDIT_BALANCE_REACHED)], view(NOW)) is None


def test_spend_restarts_when_the_billing_period_ends() -> None:
    _start, month_end = month_bounds(NOW)
    assert next_instant([alert(AlertType.SPEND_THRESHOLD_REACHED)], view(NOW)) == month_end


def test_spend_also_moves_when_the_contract_in_force_ends() -> None:
    month_start, month_end = month_bounds(NOW)
    ends = NOW + US_PER_HOUR
    found = next_instant([alert(AlertType.SPEND_THRESHOLD_REACHED)], view(NOW, [contract(month_start, ends)]))
    assert found == min(ends, month_end)


def test_balances_move_when_a_segment_starts_or_ends_and_spend_does_not() -> None:
    first_end, second_end = NOW + 2 * US_PER_DAY, NOW + 5 * US_PER_DAY
    commits = [credit((NOW - US_PER_DAY, first_end), (first_end, second_end))]
    balance = [alert(AlertType.LOW_CREDIT_BALANCE_REACHED)]
    assert next_instant(balance, view(NOW, commits=commits)) == first_end
    assert next_instant(balance, view(first_end, commits=commits)) == second_end
    assert next_instant(balance, view(second_end, commits=commits)) is None

    spend_only = [alert(AlertType.SPEND_THRESHOLD_REACHED)]
    assert next_instant(spend_only, view(NOW, commits=commits)) == month_bounds(NOW)[1]


def test_days_in_plan_reach_the_threshold_that_long_before_the_contract_ends() -> None:
    month_start, _end = month_bounds(NOW)
    ends = NOW + 10 * US_PER_DAY
    days = [alert(AlertType.LOW_REMAINING_DAYS_IN_PLAN_REACHED, threshold=5)]
    plan = [contract(month_start - 40 * US_PER_DAY, ends)]
    assert next_instant(days, view(NOW, plan)) == ends - 5 * US_PER_DAY
    # Past the threshold, what is left to happen is the end of the plan.
    assert next_instant(days, view(NOW + 6 * US_PER_DAY, plan)) == ends


def test_days_per_segment_follow_each_segments_end() -> None:
    soon, later = NOW + 3 * US_PER_DAY, NOW + 20 * US_PER_DAY
    commits = [credit((NOW - US_PER_DAY, soon), (NOW - US_PER_DAY, later))]
    days = [alert(AlertType.LOW_REMAINING_DAYS_FOR_COMMIT_SEGMENT_REACHED, threshold=1)]
    assert next_instant(days, view(NOW, commits=commits)) == soon - US_PER_DAY
    assert next_instant(days, view(soon, commits=commits)) == later - US_PER_DAY
