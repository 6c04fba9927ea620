"""The evaluator's batch pacing: batches sized to a target duration from the recent cost."""

from hypothesis import given
from hypothesis import strategies as st

from meterline.engine.batch_pacing import MIN_EVENTS, BatchPacer


def test_without_a_timed_batch_the_whole_maximum_is_taken() -> None:
    assert BatchPacer(target_s=0.05, max_events=20_000).next_limit() == 20_000


def test_costly_events_make_small_batches_and_cheap_ones_large() -> None:
    pacer = BatchPacer(target_s=0.05, max_events=20_000)
    pacer.observe(events=1_000, elapsed_s=0.5)  # 500 µs an event: crossings measured in full
    assert pacer.next_limit() == 100
    cheap = BatchPacer(target_s=0.05, max_events=20_000)
    cheap.observe(events=10_000, elapsed_s=0.1)  # 10 µs an event: folded only
    assert cheap.next_limit() == 5_000


def test_the_estimate_follows_a_change_of_cost_within_a_few_batches() -> None:
    pacer = BatchPacer(target_s=0.05, max_events=20_000)
    pacer.observe(events=5_000, elapsed_s=0.05)
    for _ in range(10):
        pacer.observe(events=100, elapsed_s=0.05)  # now 500 µs an event
    assert pacer.next_limit() < 150


def test_no_target_means_the_maximum_whatever_the_cost() -> None:
    pacer = BatchPacer(target_s=0, max_events=20_000)
    pacer.observe(events=10, elapsed_s=10.0)
    assert pacer.next_limit() == 20_000


@given(
    st.lists(st.tuples(st.integers(0, 50_000), st.floats(0, 30, allow_nan=False)), max_size=30),
    st.integers(1, 50_000),
)
def test_the_limit_stays_within_its_bounds(batches: list[tuple[int, float]], max_events: int) -> None:
    pacer = BatchPacer(target_s=0.05, max_events=max_events)
    for events, elapsed in batches:
        pacer.observe(events, elapsed)
        assert min(MIN_EVENTS, max_events) <= pacer.next_limit() <= max_events
