"""Properties of editing a commit's schedules (`domain.commit_edits`): whatever the edit, what
finalized invoices drew from an access item, or an invoice billed, stays as it was, and every other
change lands exactly as asked."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meterline.domain.commit_edits import (
    AccessEdit,
    Drawn,
    InvoiceEdit,
    ItemChange,
    SegmentChange,
    edited_access,
    edited_invoice_items,
)
from meterline.domain.commit_rules import InvoiceItem
from meterline.domain.contracts import AccessSegment
from meterline.domain.errors import InvalidInput

HOUR = 3_600_000_000
cents = st.integers(1, 10_000).map(lambda n: Decimal(n) / 100)


@st.composite
def drawn_schedules(draw: st.DrawFn) -> tuple[list[AccessSegment], dict[str, Drawn]]:
    """Segments, and what finalized invoices drew from some of them (never more than granted)."""
    segments, drawn = [], {}
    for index in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, 100)) * HOUR
        end = start + draw(st.integers(1, 48)) * HOUR
        amount = draw(cents)
        segments.append(AccessSegment(f"s{index}", amount, start, end))
        if draw(st.booleans()):
            taken = min(amount, draw(cents))
            drawn[f"s{index}"] = Drawn(taken, draw(st.integers(start // HOUR + 1, end // HOUR)) * HOUR)
    return segments, drawn


@st.composite
def segment_changes(draw: st.DrawFn) -> SegmentChange:
    return SegmentChange(
        f"s{draw(st.integers(0, 4))}",
        draw(st.none() | cents),
        draw(st.none() | st.integers(0, 150).map(lambda h: h * HOUR)),
        draw(st.none() | st.integers(0, 150).map(lambda h: h * HOUR)),
    )


@given(
    drawn_schedules(),
    st.lists(st.integers(0, 4).map(lambda i: f"s{i}"), max_size=2, unique=True),
    st.lists(segment_changes(), max_size=3, unique_by=lambda c: c.id),
)
def test_drawn_items_keep_what_was_drawn_and_the_rest_changes_as_asked(
    schedule: tuple[list[AccessSegment], dict[str, Drawn]], removed: list[str], changes: list[SegmentChange]
) -> None:
    segments, drawn = schedule
    edit = AccessEdit(remove=tuple(removed), update=tuple(changes))
    try:
        result = edited_access(segments, edit, drawn, "update_commits.0")
    except InvalidInput as error:
        assert error.message.startswith("update_commits.0.access_schedule.")
        return
    by_id = {s.id: s for s in result}
    before = {s.id: s for s in segments}
    assert set(by_id) == set(before) - set(removed)
    for segment_id, taken in drawn.items():
        kept = by_id[segment_id]  # never removed
        assert kept.starting_at_us == before[segment_id].starting_at_us
        assert kept.ending_before_us >= taken.until_us and kept.amount >= taken.amount
    for change in changes:
        got = by_id[change.id]
        assert got.amount == (before[change.id].amount if change.amount is None else change.amount)
        if change.ending_before_us is not None:
            assert got.ending_before_us == change.ending_before_us
    assert all(s.starting_at_us < s.ending_before_us for s in result)


@given(st.lists(st.booleans(), min_size=1, max_size=4), st.integers(0, 3), st.booleans())
def test_an_invoiced_item_neither_changes_nor_goes(billed_flags: list[bool], pick: int, remove: bool) -> None:
    items = [
        (f"i{n}", InvoiceItem(n * HOUR, Decimal(10), Decimal(10), Decimal(1)))
        for n in range(len(billed_flags))
    ]
    billed = {f"i{n}": f"inv{n}" for n, flag in enumerate(billed_flags) if flag}
    target = f"i{pick % len(items)}"
    edit = (
        InvoiceEdit(remove=(target,))
        if remove
        else InvoiceEdit(update=(ItemChange(target, amount=Decimal(7)),))
    )
    if target in billed:
        with pytest.raises(InvalidInput, match=f"billed item {target}"):
            edited_invoice_items(items, edit, billed, "update_commits.0")
        return
    result = dict(edited_invoice_items(items, edit, billed, "update_commits.0"))
    assert (target in result) != remove
    if not remove:
        assert (result[target].amount, result[target].quantity) == (Decimal(7), Decimal(1))
    assert {i: result[i] for i in billed} == {i: item for i, item in items if i in billed}
