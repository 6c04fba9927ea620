"""How far the evaluator has got, asked through the API: `POST /v1/events/search` answers each
transaction id with `processed_at`, set once the evaluator's cursor has passed the event.

The evaluator applies the log in sequence order, so one event being processed means every event
logged before it is too. Each connection's requests are committed one after another, so the
highest sequence number of a run is in one of the connections' last acknowledged batches: once
the last event of each of those is processed, every acknowledged event has been evaluated.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import httpx

SEARCH_LIMIT = 100


def processed(client: httpx.Client, transaction_ids: Sequence[str]) -> set[str]:
    """Those of the transaction ids (at most 100) whose events the evaluator has processed."""
    response = client.post("/v1/events/search", json={"transactionIds": list(transaction_ids)})
    response.raise_for_status()
    return {e["transaction_id"] for e in response.json() if e.get("processed_at")}


def evaluated_fraction(client: httpx.Client, transaction_ids: Sequence[str]) -> float:
    """The share of a sample of acknowledged events (spread over the run) already processed."""
    if not transaction_ids:
        return 0.0
    sample = list(transaction_ids)
    if len(sample) > SEARCH_LIMIT:
        step = len(sample) / SEARCH_LIMIT
        sample = [sample[min(len(sample) - 1, int((i + 1) * step) - 1)] for i in range(SEARCH_LIMIT)]
    return len(processed(client, sample)) / len(sample)


def wait_processed(client: httpx.Client, transaction_ids: Sequence[str], timeout_s: float) -> int:
    """Poll until every one of the transaction ids is processed; returns that time (time_ns)."""
    wanted = set(transaction_ids)
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = sorted(wanted)
        for start in range(0, len(remaining), SEARCH_LIMIT):
            wanted -= processed(client, remaining[start : start + SEARCH_LIMIT])
        if not wanted:
            return time.time_ns()
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{len(wanted)} acknowledged events still not evaluated after {timeout_s:.0f}s"
            )
        time.sleep(0.02)
