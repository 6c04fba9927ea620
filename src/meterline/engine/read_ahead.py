"""Reading ahead the state of customers near a threshold, before the usage that crosses it.

A customer's first measurement in a while starts by reading its state (contracts, commits,
invoices, alerts, alert states: `customer_state`), about a third of that measurement's CPU. A
customer whose usage its headroom absorbs needs no measurement, and so no state, until usage
could move one of its alerts; when many such customers cross at once (a burst), the batch that
measures them reads every one of their states before any of their notifications commits.

A headroom knows when it is nearly used up: the usage it just took, taken again, would not fit
(`Headroom.near`). Those customers are noted here, and batches that measure no one read their
states into the snapshots (`snapshots`): an idle batch a slice after another until usage arrives,
a batch with usage one slice. The batch their crossing lands in then finds them kept. The states
are the ones a later read would find: snapshots are dropped whenever anything else writes
customer state, and then read ahead again. Only where snapshots are kept between batches
(SQLite); elsewhere there is nothing to read into.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

from sqlalchemy import Connection

from meterline.engine.snapshots import CustomerSnapshots

# States read at once: a slice costs about 10 to 20 ms of CPU, what usage that arrives while one
# is read waits at most for its batch. An idle batch reads slice after slice until usage arrives,
# up to `MOST`: one transaction for many slices, as the time between the usage that brings
# customers near their thresholds and the usage that crosses them may be short.
SLICE = 100
MOST = 2_000


class ReadAhead:
    def __init__(self, capacity: int):
        # Most customers noted (least recently noted go first): at most half the snapshots kept,
        # so that reading ahead never displaces most of what the batches themselves keep.
        self.capacity = capacity // 2
        self._near: OrderedDict[str, None] = OrderedDict()
        self._unread: OrderedDict[str, None] = OrderedDict()  # not read since the snapshots' last drop
        self._drops = 0  # the snapshots' drops `_unread` follows

    def note(self, near: Iterable[str], measured: Iterable[str]) -> None:
        """After a batch's measurements: customers its headrooms left near a threshold, and
        those it measured (their states are read; their new headrooms start afresh)."""
        self.forget(measured)
        if self.capacity <= 0:
            return
        for customer_id in near:
            self._near[customer_id] = self._unread[customer_id] = None
            self._near.move_to_end(customer_id)
        while len(self._near) > self.capacity:
            self._unread.pop(self._near.popitem(last=False)[0], None)

    def pending(self, snapshots: CustomerSnapshots) -> bool:
        """Whether some noted customer's state may not be kept."""
        return snapshots.keeping and bool(self._unread_since(snapshots))

    def read(self, conn: Connection, snapshots: CustomerSnapshots, arrived: Callable[[], bool]) -> bool:
        """Read the noted customers' states not kept, a slice at a time, until `arrived()` says
        usage is waiting or `MOST` are read; call in a batch that measures no one, after
        `snapshots.begin`. Returns whether more remain to read."""
        if not snapshots.keeping:
            return False
        unread = self._unread_since(snapshots)
        done = 0
        while unread and done < MOST and not (done and arrived()):
            taken = [unread.popitem(last=False)[0] for _ in range(min(SLICE, len(unread)))]
            missing = snapshots.missing(taken)
            if missing:
                snapshots.read(conn, missing)
            done += len(taken)
        return bool(unread)

    def forget(self, customer_ids: Iterable[str]) -> None:
        for customer_id in customer_ids:
            self._near.pop(customer_id, None)
            self._unread.pop(customer_id, None)

    def _unread_since(self, snapshots: CustomerSnapshots) -> OrderedDict[str, None]:
        if snapshots.drops != self._drops:  # every state read ahead was dropped: read them again
            self._drops = snapshots.drops
            self._unread = OrderedDict(self._near)
        return self._unread

    def __len__(self) -> int:
        return len(self._near)
