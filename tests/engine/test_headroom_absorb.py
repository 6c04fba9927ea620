"""A headroom takes one metric's movement (`Headroom.absorb_one`, with what it moves spend by worked
out once for every customer of the same bounds and movement: `spend_moves`) exactly as it takes
any list of movements (`Headroom.absorb`): the same answer, and the same rooms left."""

from __future__ import annotations

import copy
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from meterline.domain.spend_bounds import UnitBound
from meterline.domain.usage_fold import Movement
from meterline.engine.headroom import Headroom, shared_bounds, spend_moves

METRICS = ("m1", "m2")
CREDIT_TYPES = ("usd", "cpu")
amounts = st.decimals(min_value=0, max_value=200, places=2)
rooms = amounts | st.just(Decimal("Infinity"))
bounds_values = st.decimals(min_value=0, max_value=5, places=2) | st.just(Decimal("Infinity"))


def room_dict(keys: tuple[str, ...]) -> st.SearchStrategy[dict[str, Decimal]]:
    return st.dictionaries(st.sampled_from(keys), rooms, max_size=len(keys))


@st.composite
def headrooms(draw: st.DrawFn) -> Headroom:
    added = draw(room_dict(METRICS))
    removed = {metric: draw(rooms) for metric in added}  # narrowed together
    rise = draw(room_dict(CREDIT_TYPES))
    fall = {credit_type: draw(rooms) for credit_type in rise}
    bounds = draw(
        st.dictionaries(
            st.sampled_from(METRICS),
            st.dictionaries(
                st.sampled_from(CREDIT_TYPES),
                st.builds(UnitBound, bounds_values, bounds_values, bounds_values),
                max_size=2,
            ),
            max_size=2,
        )
    )
    until = draw(st.none() | st.integers(0, 20))
    return Headroom(rise, fall, added, removed, bounds, until)


movements = st.builds(Movement, amounts, amounts, st.integers(1, 30))


@settings(max_examples=500)
@given(room=headrooms(), metric_id=st.sampled_from(METRICS), m=movements, now_us=st.integers(0, 20))
def test_one_metric_taken_at_once_is_taken_as_any_list(
    room: Headroom, metric_id: str, m: Movement, now_us: int
) -> None:
    listed = copy.deepcopy(room)
    at_once = copy.deepcopy(room)
    taken = listed.absorb([(metric_id, m)], now_us)
    assert at_once.absorb_one(metric_id, m, spend_moves(at_once.bounds, metric_id, m), now_us) == taken
    assert at_once == listed


@settings(max_examples=500)
@given(
    room=headrooms(), moved=st.lists(st.tuples(st.sampled_from(METRICS), movements), min_size=1, max_size=2)
)
def test_a_headroom_is_near_exactly_when_the_same_usage_again_would_not_be_taken(
    room: Headroom, moved: list[tuple[str, Movement]]
) -> None:
    """`near` (what the engine reads states ahead for: `engine.read_ahead`) says whether the usage
    just taken, taken again at once, would be refused (`absorb_one` sets it alike: the test above
    compares whole headrooms)."""
    if not room.absorb(moved, 0):
        return
    again = copy.deepcopy(room)
    assert room.near == (not again.absorb(moved, 0))


def test_headrooms_of_the_same_bounds_share_them_to_the_digits() -> None:
    # Each measurement derives its own bounds; a headroom keeps the one shared object of their
    # value and digits, so that the engine works out a movement's spend once for all of them.
    def bounds(rise: str) -> dict[str, dict[str, UnitBound]]:
        return {"m1": {"usd": UnitBound(Decimal(rise), Decimal("0"), Decimal("Infinity"))}}

    first, again, other_digits = (
        shared_bounds(bounds("1.50")),
        shared_bounds(bounds("1.50")),
        shared_bounds(bounds("1.5")),
    )
    assert first is again
    assert first == bounds("1.50") and str(first["m1"]["usd"].rise) == "1.50"
    assert other_digits is not first and str(other_digits["m1"]["usd"].rise) == "1.5"
    assert first["m1"]["usd"].per_event == Decimal("Infinity")
