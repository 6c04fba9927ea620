"""The customers the engine resolved event references to (customer ids and ingest aliases), kept
across batches while the customer directory's version stays (database triggers move it whenever
a customer or an alias is updated or deleted: migration 0021).

At most `capacity` are kept, the least recently used dropped first. At a start or a take-over
(and after the directory's version moved) the active aliases of the partitions held are loaded
a slice per batch (`warm`), as the least recently used, never displacing one in memory: a running
engine resolves its customers' aliases without a read, where a probe in a million-alias index
was a sixth of an event's cost with traffic spread over a million customers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from sqlalchemy import Connection, select

from meterline.domain.partitions import partition_of
from meterline.store import customers
from meterline.store.tables import customer_directory_version

# References kept (about 250 bytes each).
DEFAULT_REFERENCES = 2_000_000
# Active aliases loaded per batch while warming (a few µs each): a million within a hundred batches.
WARM_SLICE = 10_000


class ResolvedReferences:
    def __init__(self, capacity: int = DEFAULT_REFERENCES) -> None:
        self.capacity = capacity
        self._customers: OrderedDict[str, str] = OrderedDict()  # reference -> active customer id
        self._version: int | None = None
        self._partitions: frozenset[int] | None = None
        # The last alias loaded by `warm` (None: done), for the partitions held.
        self._warm_after: str | None = ""
        self.warm_slice = WARM_SLICE  # 0: resolve on first use only

    def begin(self, conn: Connection, partitions: frozenset[int] | None = None) -> None:
        """Call at the start of each batch, in its transaction, with the partitions held (None:
        every one)."""
        version = conn.execute(select(customer_directory_version.c.version)).scalar_one()
        if version != self._version:
            self._customers.clear()
            self._version = version
            self._warm_after = ""
        if partitions != self._partitions:
            self._partitions = partitions
            self._warm_after = ""  # what is kept stays right; the new partitions' are loaded

    @property
    def warming(self) -> bool:
        """Active aliases of the partitions held are still being loaded (`warm`)."""
        return self.capacity > 0 and self.warm_slice > 0 and self._warm_after is not None

    def warm(self, conn: Connection) -> bool:
        """Load the next `warm_slice` active aliases whose events the partitions held receive,
        without displacing any reference in memory. Call after `begin`. Returns whether more remain."""
        if not self.warming or self._version is None:
            return False
        assert self._warm_after is not None
        found = customers.active_aliases_after(conn, self._warm_after, self.warm_slice)
        self._warm_after = found[-1][0] if len(found) == self.warm_slice else None
        held = self._partitions
        kept = self._customers
        for alias, customer_id in found:
            if len(kept) >= self.capacity:
                self._warm_after = None  # full: the rest are resolved on their first use
                break
            if alias not in kept and (held is None or partition_of(alias) in held):
                kept[alias] = customer_id
                kept.move_to_end(alias, last=False)
        return self.warming

    def resolve(self, conn: Connection, references: Iterable[str]) -> dict[str, str]:
        """Each reference that names an active customer, mapped to its id."""
        kept = self._customers
        resolved: dict[str, str] = {}
        missing: list[str] = []
        for reference in set(references):
            customer_id = kept.get(reference)
            if customer_id is None:
                missing.append(reference)
            else:
                resolved[reference] = customer_id
                kept.move_to_end(reference)
        if missing:
            found = customers.resolve_customer_refs(conn, missing)
            resolved.update(found)
            if self.capacity > 0:
                kept.update(found)
                while len(kept) > self.capacity:
                    kept.popitem(last=False)
        return resolved

    def clear(self) -> None:
        """After a failed batch (what it resolved may rest on writes rolled back)."""
        self._customers.clear()
        self._version = None
        self._warm_after = ""

    def __len__(self) -> int:
        return len(self._customers)
