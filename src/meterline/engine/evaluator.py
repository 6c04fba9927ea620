"""The evaluator: tails the event log of the partitions it holds and applies each batch in one
transaction.

One batch = read its partitions' events after their positions, resolve customers, fold usage
into hour and period aggregates, record what could not be counted, and move the positions, all
committed together, after checking (rows locked) that it still holds those partitions at those
positions. A crash before the commit leaves nothing; a crash after it leaves the positions past
the batch; a hand-over resumes from the committed positions; so every event is counted exactly
once. In the same transaction, for every customer whose home partition it holds and that the
batch touched (unless its headroom says no alert can move: `headroom`), or whose contracts
changed, the drafts are derived (kept in memory, never stored per batch: `billing`), invoices
past their grace period are finalized, and the customer's alerts are evaluated, each
transition writing one outbox notification. A customer counted here whose home partition
another engine holds is handed to it as a billing request. A batch measures at most
`batch_customers` customers; the rest are deferred to the next batches, durably (`measure_cap`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Protocol

from sqlalchemy import Connection

from meterline.domain.closed_periods import closed_period_of
from meterline.domain.ids import USD_CENTS_CREDIT_TYPE_ID
from meterline.domain.reservations import RESERVATION_PROPERTY
from meterline.domain.timeutil import US_PER_DAY, US_PER_HOUR, US_PER_SECOND, now_us
from meterline.domain.usage_fold import CountableEvent, Movement, fold
from meterline.engine import alert_evaluation, billing, customer_refs, headroom, scheduled_billing
from meterline.engine.alert_measures import Measurement
from meterline.engine.alert_sweeps import TRIGGERED_BY_CHANGE, TRIGGERED_BY_USAGE, AlertSweeper
from meterline.engine.customer_refs import ResolvedReferences
from meterline.engine.customer_state import CustomerState
from meterline.engine.event_source import EventSource, TableEventSource
from meterline.engine.headroom import HeadroomBook
from meterline.engine.measure_cap import DEFAULT_CUSTOMERS as DEFAULT_BATCH_CUSTOMERS
from meterline.engine.measure_cap import MeasureCap, Selection
from meterline.engine.membership import DEFAULT_LEASE_S, Membership
from meterline.engine.read_ahead import ReadAhead
from meterline.engine.recurring_periods import create_due_commits
from meterline.engine.rollovers import roll_over_due
from meterline.engine.snapshots import DEFAULT_CACHED_CUSTOMERS, CustomerSnapshots
from meterline.engine.threshold_charges import buy_threshold_commits
from meterline.engine.usage_deferral import DeferralSettings, UsageDeferral
from meterline.liveness import PartLiveness
from meterline.logging import get_logger
from meterline.metrics import (
    EVALUATOR_ABSORBED,
    EVALUATOR_BATCH,
    EVALUATOR_EVENTS,
    EVALUATOR_FAILURES,
    EVALUATOR_MEASURED,
    EVALUATOR_PARTS,
    record_transitions,
)
from meterline.store import (
    alert_resolutions,
    alerts,
    billable_metrics,
    billing_requests,
    catalog_version,
    customer_spend,
    customers,
    event_log,
    invoices,
    partitions,
    reservations,
    unmatched,
)
from meterline.store.alerts import AlertRecord
from meterline.store.db import Database
from meterline.store.event_log import LoggedEvent
from meterline.store.partitions import LeaseLost

log = get_logger("meterline.evaluator")
# The parts of a batch, timed in turn: the commit is the end of the `write()` block, with what runs
# right after it (notifications handed to the dispatcher, the dispatcher woken).
_PARTS = ("read", "fold", "measure", "rest", "commit")


class OutboxHandoff(Protocol):
    """The webhook dispatcher, as the evaluator hands it the notifications a batch wrote."""

    def claim_in(self, conn: Connection, now_us: int) -> list[Any]: ...

    def hand_over(self, claims: list[Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class BatchResult:
    events: int
    position: int
    more_work: bool = False  # an alert sweep has chunks left
    deferred: int = 0  # customers left for the next batches to measure (`measure_cap`)


class Evaluator:
    def __init__(
        self,
        db: Database,
        *,
        batch_events: int,
        poll_interval_s: float,
        batch_customers: int = DEFAULT_BATCH_CUSTOMERS,
        dedup_window_days: int = 34,
        grace_period_hours: int = 24,
        max_backdate_days: int = 34,
        sweep_chunk_customers: int = 500,
        cached_customers: int = DEFAULT_CACHED_CUSTOMERS,
        headroom_customers: int = headroom.DEFAULT_CUSTOMERS,
        reference_customers: int = customer_refs.DEFAULT_REFERENCES,
        clock: Callable[[], int] = now_us,
        on_commit: Callable[[], None] | None = None,
        outbox: OutboxHandoff | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        member_id: str | None = None,
        predecessor: str | None = None,
        source: EventSource | None = None,
        usage_deferral: DeferralSettings | None = None,
    ):
        self.db = db
        self.membership = Membership(
            db, clock=clock, lease_s=lease_s, member_id=member_id, predecessor=predecessor
        )
        self.source = source or TableEventSource(db)
        self.outbox = outbox
        self.clock = clock
        # After each commit (which may have written notifications): wakes the webhook dispatcher.
        self.on_commit = on_commit
        self.snapshots = CustomerSnapshots(cached_customers)
        self.read_ahead = ReadAhead(cached_customers)
        self.headrooms = HeadroomBook(headroom_customers)
        self.catalog_memo = billing.CatalogMemo()
        self.references = ResolvedReferences(reference_customers)
        self.usage = UsageDeferral(usage_deferral)
        # The sweeps evaluate customers from states of their own: the kept ones would be stale.
        self.grace_us = grace_period_hours * US_PER_HOUR
        # Billing periods whose drafts an event may still change: the backdating limit plus grace.
        self.open_horizon_us = max_backdate_days * US_PER_DAY + self.grace_us
        self.sweeps = AlertSweeper(
            sweep_chunk_customers,
            on_evaluated=self._forget,
            open_horizon_us=self.open_horizon_us,
            on_measured=self._measure_headrooms,
        )
        self.batch_events = batch_events
        self.cap = MeasureCap(batch_customers)
        self.poll_interval_s = poll_interval_s
        self.dedup_window_days = dedup_window_days
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_purge_us = 0
        self._last_batch_us = 0
        # This batch's spends of hard limits, to store (the last measured of each, if measured twice).
        self._spends: dict[tuple[str, str], customer_spend.SpendRow] = {}

    # -- in-process signalling -------------------------------------------------------------
    def notify(self) -> None:
        """Called right after events are committed, so the evaluator need not wait to poll."""
        self._wake.set()

    def liveness(self) -> PartLiveness:
        return PartLiveness(self._thread is not None and self._thread.is_alive(), 0)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="meterline-evaluator", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.merge_usage()
        self.leave()

    def merge_usage(self) -> None:
        """Merge the usage journal into the usage tables now (a clean stop leaves it empty)."""
        if self._thread is not None and self._thread.is_alive():
            return  # still in a batch: the next engine merges it
        try:
            with self.db.write() as conn:
                self.usage.merge(conn, self.clock())
        except Exception:
            self.usage.reset()
            log.exception("usage_journal_not_merged")  # readers add it; the next engine merges it

    def leave(self) -> None:
        """Give up the partitions at once, so that another engine need not wait out the leases."""
        try:
            self.membership.leave()
        except Exception:
            log.exception("partitions_not_released")  # they are taken over when the leases end

    # -- the loop ------------------------------------------------------------------------
    def run_forever(self) -> None:
        log.info("evaluator_started", batch_events=self.batch_events)
        while not self._stop.is_set():
            try:
                result = self.run_once()
            except Exception:
                log.exception("evaluator_batch_failed")
                EVALUATOR_FAILURES.inc()
                self._stop.wait(1.0)
                continue
            if result.events == 0 and not result.more_work:
                self._maybe_purge()
                # Never longer than the leases' renewal interval: an idle engine keeps its share.
                self._wake.wait(min(self.poll_interval_s, self.membership.lease_us / 3 / US_PER_SECOND))
                self._wake.clear()
        log.info("evaluator_stopped")

    def run_once(self) -> BatchResult:
        """Apply the next batch, if any. Adaptive: takes whatever is waiting, up to the limit."""
        started, cpu_started, read_at_us = time.perf_counter(), time.thread_time(), now_us()
        # Set again by usage committed from now on: what this batch reads is already committed.
        self._wake.clear()
        misses_before = self.snapshots.misses
        holding = self.membership.current()
        if not holding.positions:
            return BatchResult(0, 0)  # another engine holds every partition for now
        read = self.source.read(holding, self.batch_events)
        batch = read.events
        marks = [started, time.perf_counter()]  # the parts of a batch (EVALUATOR_PARTS)
        cpu_marks = [cpu_started, time.thread_time()]  # and the thread's CPU time in each
        held = None if holding.holds_all else holding.partitions
        idle = not self._housekeeping_due() and not self._warming and not self.cap.waiting
        if not batch and held is not None and idle:
            # Woken by another engine's events: nothing to do here until the next poll's batch
            # (billing requests, sweeps, finalization), which also moves the positions past them.
            return BatchResult(0, holding.start())
        try:
            with self.db.write() as conn:
                alerts.take_written_tally(conn)  # nothing left from a transaction rolled back
                self.snapshots.begin(conn)
                now = self.clock()
                try:
                    partitions.lock_held(conn, self.membership.member_id, holding)
                except LeaseLost:
                    self.membership.lost()  # handed over, or another engine moved a position
                    self.usage.reset()
                    return BatchResult(0, holding.start(), more_work=True)
                catalog_at = catalog_version.current(conn)
                self.usage.begin(conn)
                # A stored headroom may not count usage still in the journal: those customers
                # are measured in full instead (`engine.usage_deferral`).
                self.headrooms.unsettled = self.usage.pending_customers
                self.headrooms.begin(catalog_at, held)
                warming = self.headrooms.warm(conn)
                self._spends = {}
                self.catalog_memo.at_version(catalog_at)
                self.references.begin(conn, held)
                warming = self.references.warm(conn) or warming
                remeasured = self._resolve(conn, now, held)
                asked = billing_requests.take_requests(conn, max(1000, self.cap.most), held)
                requested = remeasured | asked.keys()
                touched, movements, settling = (
                    self._apply(conn, batch, now, held, read.read_through) if batch else (set(), {}, set())
                )
                self.usage.merge_if_due(conn, now)
                marks.append(time.perf_counter())
                cpu_marks.append(time.thread_time())
                # Customers whose usage cannot move any alert: their usage is folded, and that is
                # all; but one whose usage settles a reservation is measured, so that the spend
                # the next reservation is decided on is the one stored (`customer_spend`).
                absorbed = self.headrooms.absorb(touched - requested - settling, movements, now)
                touched -= absorbed
                selection = self._select(conn, batch, touched, asked, remeasured)
                touched, requested = selection.by_usage, selection.requested
                self._bill(conn, touched, requested, now, held)
                marks.append(time.perf_counter())
                cpu_marks.append(time.thread_time())
                self.read_ahead.note(self.headrooms.near, touched | requested)
                more_work = self.sweeps.run(conn, now, held) or warming or bool(selection.deferred)
                if touched or requested or more_work:
                    more_work = more_work or self.read_ahead.pending(self.snapshots)
                else:
                    # Nobody measured: the states of customers near a threshold, read now, are not
                    # read by the batch their crossing lands in (`read_ahead`). Idle, until usage
                    # arrives; with usage, a slice.
                    arrived = self._wake.is_set if not batch else _at_once
                    more_work = self.read_ahead.read(conn, self.snapshots, arrived)
                self.headrooms.flush(conn, read.read_through)
                customer_spend.save(conn, self._spends.values(), read.read_through, catalog_at)
                moved = partitions.advance(conn, self.membership.member_id, holding, read.read_through)
                claims = self.outbox.claim_in(conn, now) if self.outbox is not None else []
                transitions = alerts.take_written_tally(conn)
                marks.append(time.perf_counter())
                cpu_marks.append(time.thread_time())
        except BaseException:
            self.snapshots.clear()  # they followed changes that were just rolled back
            self.headrooms.clear()
            self.catalog_memo.clear()
            self.references.clear()
            self.usage.reset()
            raise
        self.membership.holding = moved
        self.cap.committed(selection)
        self._last_batch_us = self.clock()
        committed_at_us = now_us()
        if self.outbox is not None:
            self.outbox.hand_over(claims)
        if self.on_commit is not None:
            self.on_commit()
        record_transitions(transitions)
        EVALUATOR_ABSORBED.inc(len(absorbed))
        EVALUATOR_MEASURED.inc(len(touched))
        marks.append(time.perf_counter())
        cpu_marks.append(time.thread_time())
        if batch:
            EVALUATOR_EVENTS.inc(len(batch))
            EVALUATOR_BATCH.observe(marks[-1] - started)
            for part, (began, ended) in zip(_PARTS, pairwise(marks), strict=True):
                EVALUATOR_PARTS.labels(part).inc(ended - began)
        # A batch without usage that measured customers (deferred ones, requests) is logged too:
        # a burst's crossings are measured by such batches after the first (bench/stages.py).
        if (batch or touched or requested) and log.is_enabled_for(logging.DEBUG):
            log.debug(  # its dicts and sorts would cost a busy engine every batch
                "evaluator_batch",
                **_timings(started, marks, cpu_marks),
                events=len(batch),
                position=read.read_through,
                measured=len(touched),
                requested=len(requested),
                deferred=len(selection.deferred),
                absorbed=len(absorbed),
                states_read=self.snapshots.misses - misses_before,
                # When it read, what its notifications carry as `timestamp`, when it committed and
                # which claims it handed over: an alert's latency, stage by stage (bench/stages.py).
                read_at_us=read_at_us,
                at_us=now,
                committed_at_us=committed_at_us,
                transitions=sum(transitions.values()),
                claims=sorted({c.claim_id for c in claims}),
            )
        if not batch:
            more_work = more_work or read.read_through > holding.start()
            return BatchResult(0, read.read_through, more_work, len(selection.deferred))
        return BatchResult(len(batch), read.read_through, more_work, len(selection.deferred))

    def drain(self) -> int:
        """Apply batches until the log is exhausted and every customer its events touched is
        measured; returns events applied (for tools and tests)."""
        applied = 0
        while (result := self.run_once()).events or result.deferred:
            applied += result.events
        return applied

    def _select(
        self,
        conn: Connection,
        batch: list[LoggedEvent],
        touched: set[str],
        asked: dict[str, int],
        remeasured: set[str],
    ) -> Selection:
        """The customers this batch measures, at most `cap.most`; the others are deferred, each
        as a request written in this transaction, their headrooms dropped (`measure_cap`)."""
        requested = dict(asked)
        if remeasured - asked.keys():
            at_us = now_us()
            requested.update((c, at_us) for c in remeasured if c not in asked)

        def arrivals(customer_ids: set[str]) -> dict[str, int]:
            resolved = self.references.resolve(conn, {e.customer_ref for e in batch})
            first: dict[str, int] = {}
            for event in batch:
                customer_id = resolved.get(event.customer_ref)
                if customer_id in customer_ids and customer_id not in first:
                    first[customer_id] = event.received_at_us
            return first

        selection = self.cap.select(touched, requested, arrivals)
        if selection.deferred:
            billing_requests.defer(conn, selection.deferred)
            self.headrooms.drop(selection.newly_deferred)
        return selection

    def _apply(
        self, conn: Connection, batch: list[LoggedEvent], now: int, held: frozenset[int] | None, through: int
    ) -> tuple[set[str], dict[tuple[str, str], Movement], set[str]]:
        """Fold the batch into usage aggregates; returns the customers whose usage moved and whose
        billing this engine owns (the others are handed to their home partition's engine), how
        much each (customer, metric) moved, and the customers whose events settle reservations."""
        resolved = self.references.resolve(conn, (e.customer_ref for e in batch))
        self.headrooms.load_missing(conn, resolved.values())  # before the fold moves their usage
        closed = invoices.finalized_periods_reached(
            conn,
            ((resolved[e.customer_ref], e.timestamp_us) for e in batch if e.customer_ref in resolved),
            now,
            self.grace_us,
        )
        countable: list[CountableEvent] = []
        missing: list[unmatched.Unmatched] = []
        for event in batch:
            customer_id = resolved.get(event.customer_ref)
            if customer_id is None:
                missing.append(unmatched.Unmatched(event.seq, unmatched.UNKNOWN_CUSTOMER, None))
                continue
            ranges = closed.get(customer_id)  # almost always none: no look-up per event then
            if ranges and closed_period_of(event.timestamp_us, ranges):
                missing.append(unmatched.Unmatched(event.seq, unmatched.PERIOD_CLOSED, customer_id))
                continue
            countable.append(
                CountableEvent(event.seq, customer_id, event.event_type, event.timestamp_us, event.properties)
            )
        rules = self.catalog_memo.get(("metric_rules",), lambda: billable_metrics.active_metric_rules(conn))
        deltas = fold(countable, rules)
        if deltas.unmatched_seqs:
            by_seq = {e.seq: e.customer_id for e in countable}
            missing.extend(
                unmatched.Unmatched(seq, unmatched.NO_MATCHING_METRIC, by_seq[seq])
                for seq in deltas.unmatched_seqs
            )
        # An engine holding every partition may journal its usage; one holding some merges
        # every batch (`engine.usage_deferral`).
        self.usage.add(conn, deltas, len(batch), through, now, may_defer=held is None)
        unmatched.record(conn, missing)
        # With the usage folded, in its transaction: a settled reservation's amount is in the spend.
        claims = list(_reservation_claims(countable))
        reservations.settle(conn, claims, now)
        settling = {customer_id for _r, customer_id, _seq in claims}
        if held is None:
            return deltas.customers_touched, deltas.movements, settling
        homes = customers.home_partitions(conn, deltas.customers_touched)
        elsewhere = {c for c, home in homes.items() if home not in held}
        billing_requests.request_recompute_of(conn, elsewhere)
        return deltas.customers_touched - elsewhere, deltas.movements, settling

    def _bill(
        self, conn: Connection, touched: set[str], requested: set[str], now: int, held: frozenset[int] | None
    ) -> None:
        """Derive the drafts of each customer, finalize what is due, evaluate alerts."""
        window = billing.billing_window(now, self.open_horizon_us)
        due = invoices.due_for_finalization(conn, now, self.grace_us, partitions=held)
        finalizing = {c for c, _i in due}
        customer_ids = sorted(touched | requested | finalizing)
        catalog = billing.PricingCatalog(conn, customer_ids, self.catalog_memo)
        states = self.snapshots.load(conn, customer_ids)
        for state in states.values():
            billing.derive_drafts(state, window, catalog)
        billed = sorted(touched | requested)
        # Commits the clock or a threshold makes are measured at once: read again, drafts derived again.
        self._reload(conn, states, create_due_commits(conn, states, billed, now), window, catalog)
        self._reload(conn, states, roll_over_due(conn, states, billed, now), window, catalog)
        self._reload(conn, states, buy_threshold_commits(conn, states, billed, now, catalog), window, catalog)
        billing.mark_open_drafts(conn, states.values())
        self._finalize(conn, due, states, now, catalog)
        writes = alert_evaluation.AlertWrites()
        for customer_id in sorted(touched | requested):
            cause = TRIGGERED_BY_USAGE if customer_id in touched else TRIGGERED_BY_CHANGE
            alert_evaluation.evaluate_customer(
                conn, customer_id, now, cause, state=states[customer_id], writes=writes, catalog=catalog
            )
        self._keep_headrooms(states, writes.measured, catalog, now)
        self._note_spends(states, writes.measured, now)
        self.snapshots.remember_alert_states(writes.states)
        writes.flush(conn)

    def _reload(
        self,
        conn: Connection,
        states: dict[str, CustomerState],
        customer_ids: set[str],
        window: billing.BillingWindow,
        catalog: billing.PricingCatalog,
    ) -> None:
        if not customer_ids:
            return
        self.snapshots.forget(customer_ids)
        states.update(self.snapshots.load(conn, sorted(customer_ids)))
        for customer_id in customer_ids:
            billing.derive_drafts(states[customer_id], window, catalog)

    def _measure_headrooms(self, conn: Connection, states: dict[str, CustomerState], now: int) -> None:
        """Headrooms of customers the sweeps evaluated (some of their alerts only, perhaps): every
        alert is measured for it, nothing written but the headroom."""
        measured = {c: alert_evaluation.measure_all(conn, c, state, now) for c, state in states.items()}
        self._keep_headrooms(states, measured, billing.PricingCatalog(conn), now)
        self._note_spends(states, measured, now)

    def _note_spends(
        self,
        states: dict[str, CustomerState],
        measured: dict[str, list[tuple[AlertRecord, Measurement]]],
        now: int,
    ) -> None:
        """The spend each hard spend limit just measured (stored with the batch: `customer_spend`)."""
        for customer_id, customer_measured in measured.items():
            for alert, measurement in customer_measured:
                if alert.spend_limit == customer_spend.HARD and measurement.value is not None:
                    until = headroom.valid_until(states[customer_id], now)
                    credit_type = alert.credit_type_id or USD_CENTS_CREDIT_TYPE_ID
                    self._spends[customer_id, credit_type] = (
                        customer_id,
                        credit_type,
                        measurement.value,
                        until,
                    )

    def _keep_headrooms(
        self,
        states: dict[str, CustomerState],
        measured: dict[str, list[tuple[AlertRecord, Measurement]]],
        catalog: billing.PricingCatalog,
        now: int,
    ) -> None:
        metric_ids = {a.billable_metric_id for s in states.values() for a in s.alerts if a.billable_metric_id}
        aggregations = catalog.aggregations(tuple(sorted(metric_ids))) if metric_ids else {}
        for customer_id, customer_measured in measured.items():
            room = headroom.headroom_of(states[customer_id], customer_measured, aggregations, now)
            self.headrooms.keep(customer_id, room)

    def _finalize(
        self,
        conn: Connection,
        due: list[tuple[str, str]],
        states: dict[str, CustomerState],
        now: int,
        catalog: billing.PricingCatalog,
    ) -> None:
        """Store the due drafts, as derived now, as finalized invoices with their deductions."""
        finalized: list[tuple[invoices.InvoiceRecord, list[invoices.Deduction]]] = []
        for customer_id, invoice_id in due:
            state = states[customer_id]
            draft = next((inv for inv in state.invoices if inv.id == invoice_id), None)
            if draft is None or draft.status == invoices.FINALIZED:
                continue  # its marker was dropped above (no contract period backs it any more)
            record = billing.finalized_record(draft, catalog.credit_type_names(), now)
            drawn = [
                invoices.Deduction(segment_id, commit_id, amount)
                for commit_id, segment_id, inv_id, amount, _at in state.deductions
                if inv_id == invoice_id
            ]
            finalized.append((record, drawn + scheduled_billing.trueup_deductions(state, draft)))
        invoices.finalize(conn, finalized)
        self._forget({c for c, _i in due})  # reloaded with their invoices finalized

    def _resolve(self, conn: Connection, now: int, held: frozenset[int] | None) -> set[str]:
        """Apply the API's requests to resolve alert states; returns the customers to measure again."""
        resolutions = alert_resolutions.take(conn, held)
        if not resolutions:
            return set()
        window = billing.billing_window(now, self.open_horizon_us)
        remeasure, written = alert_evaluation.apply_resolutions(conn, resolutions, window)
        self._forget(written)  # their alert states changed outside the snapshot
        return remeasure

    def _forget(self, customer_ids: Iterable[str]) -> None:
        """Customers whose stored state changed outside what the engine keeps of them."""
        ids = set(customer_ids)
        self.snapshots.forget(ids)
        self.headrooms.drop(ids)

    @property
    def _warming(self) -> bool:
        return self.headrooms.warming or self.references.warming

    def _housekeeping_due(self) -> bool:
        return self.clock() - self._last_batch_us >= self.poll_interval_s * US_PER_SECOND

    def _maybe_purge(self) -> None:
        """When idle, at most hourly, forget transaction ids older than the dedup window."""
        now = now_us()
        if now - self._last_purge_us < US_PER_DAY // 24:
            return
        self._last_purge_us = now
        with self.db.log_write() as conn:
            purged = event_log.purge_expired_dedup_keys(conn, now - self.dedup_window_days * US_PER_DAY)
        if purged:
            log.info("dedup_keys_purged", count=purged)


def _timings(started: float, marks: list[float], cpu_marks: list[float]) -> dict[str, Any]:
    """A batch's wall time, and its parts' wall and thread CPU time (what a busy machine does not
    inflate), in milliseconds, for its debug line."""
    parts_ms, parts_cpu_ms = {}, {}
    for part, (began, ended), (cpu_began, cpu_ended) in zip(
        _PARTS, pairwise(marks), pairwise(cpu_marks), strict=True
    ):
        parts_ms[part] = round((ended - began) * 1000, 2)
        parts_cpu_ms[part] = round((cpu_ended - cpu_began) * 1000, 2)
    return {
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 2),
        "parts_ms": parts_ms,
        "parts_cpu_ms": parts_cpu_ms,
    }


def _at_once() -> bool:
    return True


def _reservation_claims(events: Iterable[CountableEvent]) -> Iterator[tuple[str, str, int]]:
    """(reservation id, customer id, seq) of each event whose properties name a reservation."""
    for event in events:
        reservation_id = event.properties.get(RESERVATION_PROPERTY)
        if isinstance(reservation_id, str) and reservation_id:
            yield reservation_id, event.customer_id, event.seq
