"""The evaluator built from settings, for the server, the engine's processes and the CLI."""

from __future__ import annotations

from collections.abc import Callable

from meterline.engine.evaluator import Evaluator, OutboxHandoff
from meterline.engine.usage_deferral import DeferralSettings
from meterline.settings import Settings
from meterline.store.db import Database


def evaluator_from_settings(
    db: Database,
    settings: Settings,
    on_commit: Callable[[], None] | None = None,
    outbox: OutboxHandoff | None = None,
    *,
    predecessor: str | None = None,
) -> Evaluator:
    return Evaluator(
        db,
        batch_events=settings.evaluator_batch_events,
        batch_customers=settings.evaluator_batch_customers,
        poll_interval_s=settings.evaluator_poll_interval_s,
        dedup_window_days=settings.dedup_window_days,
        grace_period_hours=settings.invoice_grace_period_hours,
        max_backdate_days=settings.max_backdate_days,
        sweep_chunk_customers=settings.alert_sweep_chunk_customers,
        cached_customers=settings.evaluator_cached_customers,
        headroom_customers=settings.engine_headroom_customers,
        reference_customers=settings.engine_reference_customers,
        usage_deferral=DeferralSettings(
            max_deltas=settings.engine_usage_journal_max_deltas,
            max_age_s=settings.engine_usage_journal_max_age_s,
            hot_events_per_row=settings.engine_usage_journal_hot_events_per_row,
            min_rows=settings.engine_usage_journal_min_rows,
            open_grace_s=settings.engine_usage_open_hour_grace_s,
            seal_rows=settings.engine_usage_seal_rows,
        ),
        on_commit=on_commit,
        outbox=outbox,
        lease_s=settings.engine_lease_s,
        predecessor=predecessor,
    )
