"""Reading ahead, while the engine is idle, the state of customers near a threshold.

A customer's first measurement in a while starts by reading its state (contracts, commits,
invoices, alerts, alert states: `customer_state`), about a quarter of that measurement's CPU. A
customer whose usage its headroom absorbs needs no measurement, and so no state, until usage
could move one of its alerts; when many such customers cross at once (a burst), the batch that
measures them reads every one of their states before any of their notifications commits.

A headroom knows when it is nearly used up: the usage it just took, taken again, would not fit
(`Headroom.near`). Those customers are noted here, and a batch that finds nothing else to do
reads their states into the snapshots (`snapshots`), a slice at a time, so that the batch their
crossing lands in finds them kept. The states are the same a later read would find: snapshots
are dropped whenever anything else writes customer state, and then read ahead again. Only where
snapshots are kept between batches (SQLite); elsewhere there is nothing to read into.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from sqlalchemy import Connection

from meterline.engine.snapshots import CustomerSnapshots

# States read per idle batch: a slice costs a few tens of milliseconds of CPU, so that usage that
# arrives meanwhile waits no longer than that for its batch.
SLICE = 100


class ReadAhead:
    def __init__(self, capacity: int):
        # Most customers noted (least recently noted go first): at most half the snapshots kept,
        # so that reading ahead never displaces most of what the batches themselves keep.
        self.capacity = capacity // 2
        self._near: OrderedDict[str, None] = OrderedDict()

    def note(self, near: Iterable[str], measured: Iterable[str]) -> None:
        """After a batch's measurements: customers its headrooms left near a threshold, and
        those it measured (their states are read; their new headrooms start afresh)."""
        for customer_id in measured:
            self._near.pop(customer_id, None)
        if self.capacity <= 0:
            return
        for customer_id in near:
            self._near[customer_id] = None
            self._near.move_to_end(customer_id)
        while len(self._near) > self.capacity:
            self._near.popitem(last=False)

    def read(self, conn: Connection, snapshots: CustomerSnapshots) -> bool:
        """Read the next slice of the noted customers' states not kept; call in a batch with
        nothing else to do, after `snapshots.begin`. Returns whether more remain to read."""
        if not snapshots.keeping or not self._near:
            return False
        missing = snapshots.missing(self._near)
        if missing:
            snapshots.read(conn, missing[:SLICE])
        return len(missing) > SLICE

    def forget(self, customer_ids: Iterable[str]) -> None:
        for customer_id in customer_ids:
            self._near.pop(customer_id, None)

    def __len__(self) -> int:
        return len(self._near)
