"""How many events the evaluator takes in its next batch: as many as fit a target duration.

A batch's notifications leave only when it commits, so a batch is as long as the wait of the
first crossing in it. Events cost very different amounts: one whose customer's headroom absorbs
it is a fold (tens of microseconds); one that brings a customer to its threshold costs a full
measurement of that customer (hundreds). Taking every waiting event, up to a fixed maximum,
makes a burst of crossings one long batch whose webhooks all wait for its end. The pacer keeps
an estimate of the recent cost per event (a moving average over batches) and sizes the next
batch to last about `target_s`: a burst is then committed in slices, the dispatcher sends the
first slice's webhooks while the next is measured, and traffic that costs little still goes in
large batches (whose fixed cost per batch is then spread thin).
"""

from __future__ import annotations

from dataclasses import dataclass

# Weight of the latest batch in the moving average of the cost per event.
SMOOTHING = 0.3
# Never fewer: a batch's fixed cost (leases, positions, commit) must stay spread over some events.
MIN_EVENTS = 100


@dataclass
class BatchPacer:
    target_s: float  # 0: no target, every batch takes up to `max_events`
    max_events: int
    seconds_per_event: float = 0.0  # unknown until a batch has been timed

    def next_limit(self) -> int:
        if self.target_s <= 0 or self.seconds_per_event <= 0:
            return self.max_events
        fitting = int(self.target_s / self.seconds_per_event)
        return max(min(MIN_EVENTS, self.max_events), min(self.max_events, fitting))

    def observe(self, events: int, elapsed_s: float) -> None:
        """A batch of `events` took `elapsed_s` (a batch without events teaches nothing)."""
        if events <= 0:
            return
        cost = elapsed_s / events
        if self.seconds_per_event <= 0:
            self.seconds_per_event = cost
        else:
            self.seconds_per_event += SMOOTHING * (cost - self.seconds_per_event)
