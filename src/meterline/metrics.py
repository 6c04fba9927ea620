"""Prometheus metrics (prometheus-client), for every process meterline runs.

`serve` runs the engine's parts in processes of their own, so counters and histograms are kept
in prometheus-client's multiprocess mode: each process writes its own files in the directory
`PROMETHEUS_MULTIPROC_DIR` names (set by `serve` before anything imports this module) and a
scrape of `/metrics` sums them. What is read from the database at scrape time (the evaluator's
lag, the webhook backlog) is added by `api/health.py`, the same readings `/health` reports.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter(
    "meterline_http_requests", "HTTP requests answered, by route template and status", ["route", "status"]
)
INGEST_EVENTS = Counter("meterline_ingest_events", "Usage events accepted (durably stored) by /v1/ingest")
INGEST_LATENCY = Histogram(
    "meterline_ingest_latency_seconds",
    "Time to answer a /v1/ingest request, whatever its status",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RESERVATION_BATCH = Histogram(
    "meterline_reservation_batch_requests",
    "Reserve and release requests decided and committed together, in one transaction",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
RESERVATION_BATCH_PARTS = Histogram(
    "meterline_reservation_batch_part_seconds",
    "Wall time of reservation batches, by part: queued (each request, from its arrival to its "
    "batch's start), begin (the batch's write transaction begun: waiting for the database's "
    "write lock on SQLite, a pooled connection), decide (the reads, decisions and writes), "
    "commit (with the disk's flush when commits are durable)",
    ["part"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
EVALUATOR_BATCH = Histogram(
    "meterline_evaluator_batch_seconds",
    "Time the evaluator took for one batch (events read, applied and committed)",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
EVALUATOR_EVENTS = Counter("meterline_evaluator_events", "Events the evaluator applied")
EVALUATOR_PARTS = Counter(
    "meterline_evaluator_batch_part_seconds",
    "Wall time of the evaluator's batches of events, by part: read (the events), fold (the "
    "batch's transaction begun, references resolved, usage counted), measure (drafts derived, "
    "alerts evaluated), rest (sweeps, headrooms, positions, notifications claimed), commit",
    ["part"],
)
EVALUATOR_MEASURED = Counter(
    "meterline_evaluator_customers_measured",
    "Customers a batch measured in full (drafts derived, alerts evaluated)",
)
EVALUATOR_ABSORBED = Counter(
    "meterline_evaluator_customers_absorbed",
    "Customers a batch only folded the usage of: their headroom showed no alert could move",
)
EVALUATOR_FAILURES = Counter(
    "meterline_evaluator_batch_failures", "Evaluator batches that failed and were retried"
)
ALERT_TRANSITIONS = Counter(
    "meterline_alert_transitions",
    "Alert state transitions the evaluator committed, by notification type",
    ["type"],
)
WEBHOOK_ATTEMPTS = Counter(
    "meterline_webhook_attempts",
    "Webhook attempts recorded, by outcome (succeeded, retrying, failed)",
    ["outcome"],
)


def record_transitions(by_type: Mapping[str, int]) -> None:
    for kind, count in by_type.items():
        ALERT_TRANSITIONS.labels(kind).inc(count)


def exposition() -> bytes:
    """Every process's counters and histograms, in Prometheus' text format."""
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


# Gauges read at scrape time (api/health.py takes the readings), with their help texts.
READINGS_HELP = {
    "meterline_up": "1 when /health reports every part ok, else 0",
    "meterline_evaluator_lag_events": "Events logged and not yet evaluated",
    "meterline_evaluator_lag_seconds": "Age of the oldest event not yet evaluated",
    "meterline_webhook_backlog": "Webhook deliveries pending (counted up to 100,000)",
    "meterline_webhook_oldest_undelivered_age_seconds": "Age of the oldest pending webhook delivery",
    "meterline_engine_part_restarts_recent": "Restarts of the engine's processes within the supervisor's window",
}


class _Readings(Collector):
    def __init__(self, values: Mapping[str, float]) -> None:
        self.values = values

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, value in self.values.items():
            yield GaugeMetricFamily(name, READINGS_HELP[name], value=value)


def readings_exposition(values: Mapping[str, float]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Readings(values))
    return generate_latest(registry)
