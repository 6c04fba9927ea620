"""Properties of a postpaid commit's true-up (`domain.scheduled_items.trued_up`) and of the ledger
it leaves (`store.balances`): over any commit amount and usage drawn, the true-up bills exactly
what usage left (never below zero, nothing when usage reached the commit), one unit at that
price, and once billed the commit's ledger adds up to zero: what was committed is either drawn by
usage or trued up."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from meterline.domain.contracts import POSTPAID, AccessSegment, CommitTerms
from meterline.domain.scheduled_items import POSTPAID_TRUEUP, ScheduledItem, trued_up
from meterline.store.balances import balance_of

HOUR = 3_600_000_000
ZERO = Decimal(0)

amounts = st.decimals(min_value=Decimal("0.000001"), max_value=10**9, places=6, allow_nan=False)
drawn = st.decimals(min_value=0, max_value=2 * 10**9, places=6, allow_nan=False)


def trueup_item(amount: Decimal) -> ScheduledItem:
    return ScheduledItem(
        item_id="item",
        line_type=POSTPAID_TRUEUP,
        source_id="commit",
        contract_id="contract",
        product_id="product",
        name=None,
        credit_type_id="usd",
        timestamp_us=10 * HOUR,
        quantity=Decimal(1),
        unit_price=amount,
        amount=amount,
    )


@given(amounts, drawn)
def test_the_trueup_bills_exactly_what_usage_left(amount: Decimal, consumed: Decimal) -> None:
    billed = trued_up(trueup_item(amount), consumed)
    if consumed >= amount:
        assert billed is None
        return
    assert billed is not None
    assert billed.amount == billed.unit_price == amount - consumed  # exact: no digit lost
    assert billed.quantity == 1
    assert 0 < billed.amount <= amount
    assert billed.amount + consumed == amount


@given(amounts, drawn)
def test_once_billed_the_ledger_of_the_commit_adds_up_to_zero(amount: Decimal, consumed: Decimal) -> None:
    consumed = min(consumed, amount)  # usage draws a segment down to zero at most
    commit = CommitTerms(
        id="commit",
        customer_id="customer",
        contract_id="contract",
        kind=POSTPAID,
        product_id="product",
        credit_type_id="usd",
        segments=(AccessSegment("segment", amount, 0, 10 * HOUR),),
    )
    billed = trued_up(trueup_item(amount), consumed)
    deductions = [("commit", "segment", "usage", consumed, 5 * HOUR)]
    if billed is not None:
        deductions.append(("commit", "segment", "trueup", billed.amount, 10 * HOUR))
    found = balance_of(commit, deductions, 11 * HOUR, trueups=frozenset({"trueup"}))
    assert sum((entry["amount"] for entry in found.ledger), ZERO) == 0
    kinds = [entry["type"] for entry in found.ledger]
    assert ("POSTPAID_COMMIT_TRUEUP" in kinds) == (billed is not None)
    assert "POSTPAID_COMMIT_EXPIRATION" not in kinds  # nothing is left to expire


@given(amounts, drawn)
def test_what_usage_left_of_a_commit_with_a_trueup_does_not_expire(
    amount: Decimal, consumed: Decimal
) -> None:
    consumed = min(consumed, amount)
    segments = (AccessSegment("segment", amount, 0, 10 * HOUR),)
    deductions = [("commit", "segment", "usage", consumed, 5 * HOUR)]
    kinds = {}
    for items in ((), (trueup_item(amount),)):  # do_not_invoice: no item; else its true-up
        commit = CommitTerms(
            "commit", "customer", "contract", POSTPAID, "product", "usd", segments, invoice_items=items
        )
        kinds[bool(items)] = [entry["type"] for entry in balance_of(commit, deductions, 10 * HOUR).ledger]
    assert "POSTPAID_COMMIT_EXPIRATION" not in kinds[True]  # billed by the true-up on its date
    assert ("POSTPAID_COMMIT_EXPIRATION" in kinds[False]) == (consumed < amount)
