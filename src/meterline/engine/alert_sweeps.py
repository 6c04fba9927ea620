"""Alert sweeps: evaluating many customers in bounded chunks, one chunk per evaluator batch.

Two things start a sweep: a new alert (its customer, or every customer for an all-customers
alert, evaluated at once without stalling ingest), and the clock (every customer with alerts,
re-measured periodically, because periods roll over and segments start and expire with no event).
The sweep's cursor is stored, so a restart resumes where it stopped.
"""

from __future__ import annotations

from sqlalchemy import Connection

from meterline.domain.timeutil import US_PER_SECOND
from meterline.engine import alert_evaluation
from meterline.store import alerts as store
from meterline.store import customers
from meterline.store.alerts import ALL_ALERTS

TRIGGERED_BY_USAGE = "usage"
TRIGGERED_BY_CHANGE = "reevaluation"  # a contract, commit or alert changed, or a reset
TRIGGERED_BY_TIME = "time"
TRIGGERED_BY_CREATION = alert_evaluation.ALERT_CREATED


class AlertSweeper:
    def __init__(self, interval_s: float, chunk_customers: int):
        self.interval_us = int(interval_s * US_PER_SECOND)
        self.chunk = chunk_customers
        self._last_scheduled_us: int | None = None

    def run(self, conn: Connection, now_us: int) -> bool:
        """Advance each pending sweep by one chunk; returns whether any sweep has more to do."""
        self._schedule(conn, now_us)
        more = False
        for alert_id, after, cause in store.pending_sweeps(conn):
            more |= self._advance(conn, alert_id, after, cause, now_us)
        return more

    def _schedule(self, conn: Connection, now_us: int) -> None:
        if self._last_scheduled_us is not None and now_us - self._last_scheduled_us < self.interval_us:
            return
        self._last_scheduled_us = now_us
        if store.has_active_alerts(conn) and not any(s[0] == ALL_ALERTS for s in store.pending_sweeps(conn)):
            store.start_sweep(conn, ALL_ALERTS, TRIGGERED_BY_TIME)

    def _advance(self, conn: Connection, alert_id: str, after: str | None, cause: str, now_us: int) -> bool:
        alert = None if alert_id == ALL_ALERTS else store.get_alert(conn, alert_id)
        if alert is not None and alert.customer_id is not None:
            chunk = [alert.customer_id] if after is None else []
        elif alert is None and not store.has_all_customer_alerts(conn):
            # Only customers with alerts of their own can change state: sweep just those.
            chunk = sorted(c for c in store.customers_with_own_alerts(conn) if after is None or c > after)[
                : self.chunk
            ]
        else:
            chunk = customers.active_customer_ids_after(conn, after, self.chunk)
        silent = alert is not None and cause == TRIGGERED_BY_CREATION and not alert.evaluate_on_create
        for customer_id in chunk:
            only = [alert] if alert is not None else None
            alert_evaluation.evaluate_customer(
                conn, customer_id, now_us, cause, only=only, silent_first=silent
            )
        done = len(chunk) < self.chunk or (alert is not None and alert.customer_id is not None)
        store.advance_sweep(conn, alert_id, None if done else chunk[-1])
        return not done
