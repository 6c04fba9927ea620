"""The most customers one batch measures, so that the first of many crossings commit early.

Measuring a customer (reading its state, deriving its drafts, measuring its alerts) costs about
half a millisecond of CPU the first time, and a batch commits everything it measured together:
a burst of 3,000 crossings measured in one batch delivered nothing until all 3,000 were measured.
Capped, a batch measures the customers that have waited longest, commits, and webhook delivery
(another process) sends their notifications while the next batch measures the following ones.

Every customer a batch folds usage for (or takes a request of) and does not measure is deferred
as a billing request written in the batch's own transaction (`billing_requests.defer`): a crash
after the commit leaves the request, so the customer is measured by a later batch, never
skipped; and the usage is folded once, as before, so it is never counted twice. While the
request is pending, its customer's stored spend does not hold (`customer_spend`) and an access
decision's `as_of` stays before the instant its first unmeasured event arrived (`services.access`).
The request keeps that instant, so requests are taken oldest first: deferred customers come
before newer ones. A deferred customer's headroom is dropped, so none of its later events is
absorbed before it is measured.

What the engine keeps in memory is only which deferred customers wait with usage, so that their
notifications say `triggered_by: usage` as they would have in the batch that folded it; after a
restart such a customer is measured as a requested one (`reevaluation`), as usage counted by
another engine is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# The most customers one batch measures. Large enough that spread traffic (tens of customers a
# batch) never reaches it; small enough that a burst's first crossings commit within a few
# hundred milliseconds of CPU.
DEFAULT_CUSTOMERS = 500


@dataclass(slots=True)
class Selection:
    """What a batch measures, and what it defers."""

    by_usage: set[str]  # measured because their usage moved (now, or in a batch that deferred them)
    requested: set[str]  # measured because they were asked for
    deferred: dict[str, int] = field(default_factory=dict)  # customer -> since when it waits
    newly_deferred: set[str] = field(default_factory=set)  # not waiting before this batch
    waiting_after: dict[str, bool] = field(default_factory=dict)  # the cap's memory once committed


class MeasureCap:
    def __init__(self, most: int = DEFAULT_CUSTOMERS):
        if most < 1:
            raise ValueError("a batch measures at least one customer")
        self.most = most
        # Customers deferred by this engine and not measured since -> whether usage is what waits.
        self._waiting: dict[str, bool] = {}

    def select(
        self,
        touched: set[str],
        requested: Mapping[str, int],
        arrivals: Callable[[set[str]], Mapping[str, int]],
    ) -> Selection:
        """Split the customers a batch would measure: those whose usage it folded (`touched`,
        headroom-absorbed ones already removed) and those asked for (`requested`: customer -> when
        asked). `arrivals(customers)` gives when each one's first event of the batch arrived; it is
        called only when the batch is over the cap."""
        waiting = self._waiting
        usage = {c for c in requested if waiting.get(c)}
        if len(touched) + len(requested.keys() - touched) <= self.most:
            after = {c: w for c, w in waiting.items() if c not in touched and c not in requested}
            return Selection(touched | usage, set(requested) - touched - usage, waiting_after=after)
        since = dict(requested)
        for customer_id, at_us in arrivals(touched - since.keys()).items():
            since[customer_id] = at_us
        order = sorted(since, key=lambda c: (since[c], c))
        measured, rest = order[: self.most], order[self.most :]
        by_usage = touched | usage
        deferred = {c: since[c] for c in rest}
        after = {c: w for c, w in waiting.items() if c not in since}
        after.update((c, c in by_usage) for c in rest)
        return Selection(
            by_usage={c for c in measured if c in by_usage},
            requested={c for c in measured if c not in by_usage},
            deferred=deferred,
            newly_deferred={c for c in rest if c not in waiting},
            waiting_after=after,
        )

    def committed(self, selection: Selection) -> None:
        """The batch that made `selection` committed: its deferrals are the ones pending."""
        self._waiting = selection.waiting_after

    def clear(self) -> None:
        """Forget which deferred customers wait with usage (their requests stay in the database)."""
        self._waiting = {}

    @property
    def waiting(self) -> int:
        return len(self._waiting)
