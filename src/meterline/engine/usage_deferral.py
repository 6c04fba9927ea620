"""When a batch's usage goes to the usage tables at once, and when to the journal.

Spread over many customers, every usage row a batch writes dirties a page of its own; the
journal (`store.usage_journal`) takes them off the batch, and merging many batches at once
writes each page once for many rows. Concentrated traffic gains nothing from it (a batch's rows
are few and their pages hot), and readers pay for a long journal, so:
- a batch whose rows are few (under `min_rows`: a few pages, an idle engine's small batches) or
  few for its events (`hot_events_per_row` or more events a row) merges the journal and its own
  rows at once, which keeps the journal short, or empty, where customers are hot;
- otherwise its rows are journaled, and the journal merged once it holds `max_deltas` deltas or
  its oldest row is `max_age_s` old;
- only an engine holding every partition journals (on SQLite, the one engine), on SQLite: there
  a reader's transaction is one snapshot, so it reads the stored rows and the journal's as of the
  same commit. PostgreSQL's readers read each statement as of its own start (READ COMMITTED), and
  a merge committing between two would count a delta twice or never, so there every batch merges.

On SQLite the merge writes the hour rows of open hours (from the current hour, less
`open_grace_s` for late events, on) to a table of their own (`store.usage.seal_open_hours`):
about one row per customer, so a merge of many deltas writes many rows to each of its pages,
where among every hour's rows (`usage_hourly`, a customer's hours side by side) nearly every delta
dirtied a page of its own. Once an hour has passed its rows are sealed into `usage_hourly`,
`seal_rows` at a time in the batches that follow: each customer's hour row written there once.

The engine keeps, for each customer with usage in the journal, the highest log position there:
a stored headroom (`store.headrooms`) does not say whether it counted journaled usage, so the
engine measures such a customer in full instead of trusting one. That memory is read again
from the journal after a start, a take-over, or a batch rolled back.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from meterline.domain.timeutil import US_PER_SECOND, hour_floor
from meterline.domain.usage_fold import UsageDeltas
from meterline.store import usage, usage_journal

DEFAULT_MAX_DELTAS = 300_000  # the settings' defaults (`engine_usage_journal_*`)
DEFAULT_MAX_AGE_S = 10.0
DEFAULT_HOT_EVENTS_PER_ROW = 4
DEFAULT_MIN_ROWS = 1000
DEFAULT_OPEN_GRACE_S = 600.0
DEFAULT_SEAL_ROWS = 20_000


@dataclass(frozen=True, slots=True)
class DeferralSettings:
    max_deltas: int = DEFAULT_MAX_DELTAS
    max_age_s: float = DEFAULT_MAX_AGE_S
    hot_events_per_row: int = DEFAULT_HOT_EVENTS_PER_ROW
    min_rows: int = DEFAULT_MIN_ROWS
    # An hour stays open this long after it ends (late events still update its open rows), and
    # is then sealed this many rows a batch.
    open_grace_s: float = DEFAULT_OPEN_GRACE_S
    seal_rows: int = DEFAULT_SEAL_ROWS


class UsageDeferral:
    def __init__(self, settings: DeferralSettings | None = None):
        self.settings = settings or DeferralSettings()
        # Customer id -> the highest log position of its usage in the journal; None: not read yet.
        self._pending: dict[str, int] | None = None
        self._deltas = 0
        self._oldest_us: int | None = None
        self._oldest_open_hour: int | None = None  # the earliest hour in the open hours' table
        self.merges = 0  # (for benchmarks and tests)

    @property
    def pending_customers(self) -> dict[str, int]:
        return self._pending or {}

    def begin(self, conn: Connection) -> None:
        """At the start of a batch: what the journal holds, read once after a start or a reset."""
        if self._pending is not None:
            return
        self._deltas, self._oldest_us = usage_journal.size(conn)
        self._pending = usage_journal.everything(conn).folded if self._deltas else {}
        self._oldest_open_hour = usage.oldest_open_hour(conn)

    def reset(self) -> None:
        """The batch rolled back, or another engine may have written: read the journal again."""
        self._pending = None

    def add(
        self,
        conn: Connection,
        deltas: UsageDeltas,
        events: int,
        through_seq: int,
        now_us: int,
        *,
        may_defer: bool,
    ) -> None:
        """Store a batch's folded usage (after `begin`, in the batch's transaction)."""
        assert self._pending is not None, "begin() first"
        rows = len(deltas.hourly)
        hot = rows < self.settings.min_rows or rows * self.settings.hot_events_per_row <= events
        full = self._deltas + rows >= self.settings.max_deltas
        if not may_defer or conn.dialect.name != "sqlite" or hot or full:
            self.merge(conn, now_us, deltas)
            return
        self._deltas += usage_journal.write(conn, deltas, through_seq, now_us)
        if self._oldest_us is None:
            self._oldest_us = now_us
        pending = self._pending
        for (customer_id, _m, _h, _g), aggregate in deltas.hourly.items():
            if aggregate.folded_seq > pending.get(customer_id, -1):
                pending[customer_id] = aggregate.folded_seq

    def merge_if_due(self, conn: Connection, now_us: int) -> None:
        """Merge the journal once its oldest row is `max_age_s` old (traffic or none), and seal
        the next rows of an open hour that has passed."""
        oldest = self._oldest_us
        if oldest is not None and now_us - oldest >= self.settings.max_age_s * US_PER_SECOND:
            self.merge(conn, now_us)
        open_from = self._open_from(now_us)
        if self._oldest_open_hour is not None and self._oldest_open_hour < open_from:
            self._oldest_open_hour = usage.seal_open_hours(conn, open_from, self.settings.seal_rows)

    def merge(self, conn: Connection, now_us: int, deltas: UsageDeltas | None = None) -> None:
        """Merge the journal (and a batch's usage) into the usage tables now."""
        # Only on SQLite does the engine keep open hours apart: its readers read the open rows
        # and the sealed ones in one snapshot, however a seal moves them. There every batch's
        # open hours go there, journaled or not, so that an open hour's usage is in one place.
        sqlite = conn.dialect.name == "sqlite"
        journaled = bool(self._deltas) or self._pending is None  # (None: not known to be empty)
        if journaled or sqlite:
            if journaled:
                self.merges += 1
            open_from = self._open_from(now_us) if sqlite else None
            usage.merge_journal(conn, deltas, open_from, journaled=journaled)
            self._oldest_open_hour = usage.oldest_open_hour(conn) if sqlite else None
        elif deltas is not None:
            usage.add_folded(conn, deltas)
        self._pending, self._deltas, self._oldest_us = {}, 0, None

    def _open_from(self, now_us: int) -> int:
        """The earliest hour still open: rows of earlier hours are sealed."""
        return hour_floor(now_us - int(self.settings.open_grace_s * US_PER_SECOND))
