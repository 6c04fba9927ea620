"""Customer snapshots kept from one evaluator batch to the next, for as long as nobody else writes.

Reading a batch's customers' contracts, commits, invoices, deductions, alerts and alert states
costs a fifth of the evaluator's time when each customer has many events per batch, and more when
it has one. The evaluator is the only writer of invoices, deductions, alert states and wake-ups,
and it keeps its snapshots current as it writes them (`CustomerState.replace_drafts`,
`remember_alert_states`), so a snapshot stays true until some other write transaction that may
change customer state commits: the API (contracts, commits, alerts, billing requests), another
evaluator; not webhook delivery, whose records no snapshot reads.

SQLite counts those transactions (`store.state_writes`: every write transaction moves the count
unless its writer declared it writes no customer state). Every batch reads the count inside its
write transaction, whose own begin moved it by one; any other move since the last batch, and
every snapshot is dropped. There is no list of writers to keep in step, so none can be
forgotten. What the evaluator writes without keeping its snapshots current (finalized invoices,
the alert sweeps' evaluations) drops the snapshots concerned, and a batch that fails drops them
all, since its changes to them were rolled back with it.

On PostgreSQL no such signal exists; the snapshots live for one batch, as before.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection

from meterline.engine.customer_state import CustomerState, load_states
from meterline.store import state_writes
from meterline.store.alerts import AlertState

# About 7.5 KB each for the bench's customers (a contract, a commit, 3 alerts, a draft): ~150 MB.
DEFAULT_CACHED_CUSTOMERS = 20_000


class CustomerSnapshots:
    def __init__(self, capacity: int):
        self.capacity = capacity  # most customers kept between batches (least recently billed go first)
        self._states: OrderedDict[str, CustomerState] = OrderedDict()
        self._seen: int | None = None  # the count of state writes at the last batch (its own counted)
        self.hits = 0
        self.misses = 0
        self.read_ahead = 0  # states read before any batch needed them (`engine.read_ahead`)
        self.drops = 0  # times every snapshot was dropped

    def begin(self, conn: Connection) -> None:
        """Call first in each batch's write transaction (counted, as writes are by default):
        drops every snapshot if any other transaction that may write customer state committed."""
        seen = self._count(conn)
        if seen is None or self._seen is None or not state_writes.only_one_since(self._seen, seen):
            self._states.clear()
            self.drops += 1
        self._seen = seen

    def load(self, conn: Connection, customer_ids: Sequence[str]) -> dict[str, CustomerState]:
        """The customers' states: kept ones as they are, the others read (and kept)."""
        missing = [c for c in customer_ids if c not in self._states]
        self.hits += len(customer_ids) - len(missing)
        self.misses += len(missing)
        found = load_states(conn, missing) if missing else {}
        keep = self._seen is not None
        states: dict[str, CustomerState] = {}
        for customer_id in customer_ids:
            state = found.get(customer_id)
            if state is None:
                state = self._states[customer_id]
                self._states.move_to_end(customer_id)
            elif keep:
                self._states[customer_id] = state
            states[customer_id] = state
        while len(self._states) > self.capacity:
            self._states.popitem(last=False)
        return states

    @property
    def keeping(self) -> bool:
        """Whether snapshots read in this batch are kept for the next (SQLite, capacity > 0)."""
        return self._seen is not None

    def missing(self, customer_ids: Iterable[str]) -> list[str]:
        """Those of these customers whose snapshot is not kept."""
        return [c for c in customer_ids if c not in self._states]

    def read(self, conn: Connection, customer_ids: Sequence[str]) -> None:
        """Read and keep these customers' states before a batch needs them (not counted as
        hits or misses, which say what the batches themselves read)."""
        hits, misses = self.hits, self.misses
        self.load(conn, customer_ids)
        self.hits, self.misses = hits, misses
        self.read_ahead += len(customer_ids)

    def remember_alert_states(self, states: Iterable[AlertState]) -> None:
        """Alert states the batch is about to write."""
        for state in states:
            kept = self._states.get(state.customer_id)
            if kept is not None:
                kept.alert_states[(state.alert_id, state.scope)] = state

    def forget(self, customer_ids: Iterable[str]) -> None:
        for customer_id in customer_ids:
            self._states.pop(customer_id, None)

    def clear(self) -> None:
        self._states.clear()
        self._seen = None
        self.drops += 1

    def __len__(self) -> int:
        return len(self._states)

    def _count(self, conn: Connection) -> int | None:
        if conn.dialect.name != "sqlite" or self.capacity <= 0:
            return None
        return state_writes.count(conn)
