"""Alert evaluation that no event asks for: new alerts, and the clock.

A new alert is first measured for its customer, or, for an all-customers alert, for every
customer in bounded chunks, one chunk per evaluator batch, so it never stalls ingest; each
partition's sweep is run by the engine holding it, and its cursor is stored, so a restart or a
hand-over resumes where it stopped. The clock re-measures each
customer at the instant its measures next move with time alone (`alert_clock`), also in bounded
chunks: its cost follows the instants that come due, never the number of customers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import Connection

from meterline.engine import alert_evaluation, billing
from meterline.engine.billing import DEFAULT_OPEN_HORIZON_US
from meterline.engine.customer_state import CustomerState
from meterline.engine.recurring_periods import create_due_commits
from meterline.engine.rollovers import roll_over_due
from meterline.store import alert_wakeups, customers
from meterline.store import alerts as store

TRIGGERED_BY_USAGE = "usage"
TRIGGERED_BY_CHANGE = "reevaluation"  # a contract, commit or alert changed, or a reset
TRIGGERED_BY_TIME = "time"
TRIGGERED_BY_CREATION = alert_evaluation.ALERT_CREATED


class AlertSweeper:
    def __init__(
        self,
        chunk_customers: int,
        on_evaluated: Callable[[Iterable[str]], None] = lambda _c: None,
        open_horizon_us: int = DEFAULT_OPEN_HORIZON_US,
        on_measured: Callable[[Connection, dict[str, CustomerState], int], None] = lambda _c, _s, _n: None,
    ):
        self.chunk = chunk_customers
        self.on_evaluated = on_evaluated  # told which customers' alert states or wake-ups it wrote
        # Then given their states as evaluated (drafts derived), in the same transaction.
        self.on_measured = on_measured
        self.open_horizon_us = open_horizon_us  # how far back drafts are open (`billing`)

    def _states(self, conn: Connection, customer_ids: list[str], now_us: int) -> dict[str, CustomerState]:
        return billing.with_drafts(conn, customer_ids, billing.billing_window(now_us, self.open_horizon_us))

    def run(self, conn: Connection, now_us: int, partitions: frozenset[int] | None = None) -> bool:
        """Advance each pending sweep and the clock by one chunk, for the customers of these home
        partitions (None: all); returns whether more is due."""
        more = self._wake_due(conn, now_us, partitions)
        for alert_id, partition, after, cause in store.pending_sweeps(conn, partitions):
            more |= self._advance(conn, alert_id, partition, after, cause, now_us)
        return more

    def _wake_due(self, conn: Connection, now_us: int, partitions: frozenset[int] | None) -> bool:
        due = alert_wakeups.due(conn, now_us, self.chunk, partitions)
        writes = alert_evaluation.AlertWrites()
        states = self._states(conn, due, now_us)
        created = create_due_commits(conn, states, due, now_us)  # a period that started
        if created:
            states.update(self._states(conn, sorted(created), now_us))
        created = roll_over_due(conn, states, due, now_us)  # a transition that happened
        if created:
            states.update(self._states(conn, sorted(created), now_us))
        for customer_id, state in states.items():
            # The evaluation schedules the customer's next instant, if it still has one.
            state.wakeup_us = None
            alert_wakeups.set_wakeup(conn, customer_id, None)
            alert_evaluation.evaluate_customer(
                conn, customer_id, now_us, TRIGGERED_BY_TIME, state=state, writes=writes
            )
        writes.flush(conn)
        # A draft the clock alone brought (a recurring period's invoice, shown from its period's
        # start) is marked open, and the next batch finalizes it when its date has come.
        opened = billing.mark_open_drafts(conn, states.values())
        self.on_evaluated(due)
        self.on_measured(conn, states, now_us)
        return len(due) == self.chunk or opened > 0

    def _advance(
        self, conn: Connection, alert_id: str, partition: int, after: str | None, cause: str, now_us: int
    ) -> bool:
        alert = store.get_alert(conn, alert_id)
        if alert.customer_id is not None:
            chunk = [alert.customer_id] if after is None else []
        else:
            chunk = customers.active_customer_ids_after(conn, partition, after, self.chunk)
        silent = cause == TRIGGERED_BY_CREATION and not alert.evaluate_on_create
        writes = alert_evaluation.AlertWrites()
        states = self._states(conn, chunk, now_us)
        for customer_id, state in states.items():
            alert_evaluation.evaluate_customer(
                conn,
                customer_id,
                now_us,
                cause,
                only=[alert],
                silent_first=silent,
                state=state,
                writes=writes,
            )
        writes.flush(conn)
        self.on_evaluated(chunk)
        self.on_measured(conn, states, now_us)
        done = len(chunk) < self.chunk or alert.customer_id is not None
        store.advance_sweep(conn, alert_id, partition, None if done else chunk[-1])
        return not done
