"""The customers the engine resolved event references to (customer ids and ingest aliases), kept
across batches while the customer directory's version stays (database triggers move it whenever
a customer or an alias is updated or deleted: migration 0021). Spread over a million customers,
resolving each batch's references afresh was a tenth of an event's cost."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select

from meterline.store import customers
from meterline.store.tables import customer_directory_version

# References kept (about 150 bytes each); past it they are all dropped and resolved again.
DEFAULT_REFERENCES = 2_000_000


class ResolvedReferences:
    def __init__(self, capacity: int = DEFAULT_REFERENCES) -> None:
        self.capacity = capacity
        self._customers: dict[str, str] = {}  # reference -> active customer id
        self._version: int | None = None

    def begin(self, conn: Connection) -> None:
        """Call at the start of each batch, in its transaction."""
        version = conn.execute(select(customer_directory_version.c.version)).scalar_one()
        if version != self._version:
            self._customers.clear()
            self._version = version

    def resolve(self, conn: Connection, references: Iterable[str]) -> dict[str, str]:
        """Each reference that names an active customer, mapped to its id."""
        wanted = set(references)
        missing = [r for r in wanted if r not in self._customers]
        if missing:
            found = customers.resolve_customer_refs(conn, missing)
            if len(self._customers) + len(found) > self.capacity:
                self._customers.clear()
            self._customers.update(found)
        known = self._customers
        return {r: known[r] for r in wanted if r in known}

    def clear(self) -> None:
        """After a failed batch (what it resolved may rest on writes rolled back)."""
        self._customers.clear()
        self._version = None
