"""Failures are visible: /health reports each part and answers 503 (with Retry-After) when one is
down or evaluation lags; /metrics (behind the token) counts ingest, requests by status, the
evaluator's batches and lag, and webhook attempts by outcome, summed over the engine's processes."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import httpx
import pytest

from meterline.domain.timeutil import format_rfc3339, now_us
from meterline.store.db import Database
from tests.delivery.helpers import notify
from tests.delivery.receiver import Receiver
from tests.support.server import ENGINE_IN_THREADS, RunningServer, start_server
from tests.support.waiting import wait_for


def _events(count: int) -> list[dict[str, object]]:
    stamp = format_rfc3339(now_us())
    return [
        {
            "transaction_id": f"health-{time.time_ns()}-{i}",
            "customer_id": "c",
            "event_type": "e",
            "timestamp": stamp,
        }
        for i in range(count)
    ]


def _metric(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name) + (re.escape("{" + labels + "}") if labels else "") + r" (\S+)"
    found = re.search(rf"^{pattern}$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def _server(tmp_path: Path, **env: str) -> RunningServer:
    return start_server(
        f"sqlite:///{tmp_path / 'meterline.db'}",
        tmp_path,
        METERLINE_LOG_LEVEL="info",
        **env,
    )


def test_health_reports_each_part_and_metrics_count_across_processes(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    server = _server(
        tmp_path,
        METERLINE_SECRET_KEY=Fernet.generate_key().decode(),
        METERLINE_WEBHOOK_POLL_INTERVAL_S="0.05",
    )
    receiver = Receiver().up()
    try:
        api = httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=30)
        assert api.post("/v1/ingest", json=_events(7)).status_code == 200
        assert api.post("/v1/ingest", content=b"[").status_code == 400
        assert api.post("/v1/webhooks/endpoints/create", json={"url": receiver.url}).status_code == 200
        db = Database(server.database_url)
        try:
            notify(db)
        finally:
            db.dispose()
        receiver.wait_for_requests(1)

        health = wait_for(
            lambda: httpx.get(f"{server.base_url}/health").json(),
            lambda got: got["evaluator"]["lag_events"] == 0,
        )
        assert health["status"] == "ok" and health["down"] == []
        assert health["database"]["status"] == "ok"
        assert health["engine"]["evaluator"] == {"status": "ok", "alive": True, "recent_restarts": 0}
        assert health["engine"]["webhooks"]["alive"] is True
        assert health["webhooks"]["enabled"] is True

        assert httpx.get(f"{server.base_url}/metrics").status_code == 401  # behind the token
        # The attempt is counted when its answer arrives, and leaves the backlog when attempts are
        # recorded together (within a quarter of a second): wait for both.
        text = wait_for(
            lambda: api.get("/metrics").text,
            lambda got: (
                _metric(got, "meterline_webhook_attempts_total", 'outcome="succeeded"') == 1
                and _metric(got, "meterline_webhook_backlog") == 0
            ),
        )
        assert _metric(text, "meterline_ingest_events_total") == 7
        assert _metric(text, "meterline_http_requests_total", 'route="/v1/ingest",status="200"') == 1
        assert _metric(text, "meterline_http_requests_total", 'route="/v1/ingest",status="400"') == 1
        assert _metric(text, "meterline_ingest_latency_seconds_count") == 2
        assert _metric(text, "meterline_evaluator_events_total") == 7  # counted in the evaluator's process
        assert _metric(text, "meterline_evaluator_batch_seconds_count") >= 1
        parts = ("read", "fold", "measure", "rest", "commit")  # every part of a batch, timed
        for part in parts:
            assert _metric(text, "meterline_evaluator_batch_part_seconds_total", f'part="{part}"') > 0
        # These events are for no known customer: both counters are exposed, at zero.
        for name in ("measured", "absorbed"):
            assert re.search(rf"^meterline_evaluator_customers_{name}_total 0\.0$", text, re.MULTILINE)
        assert _metric(text, "meterline_evaluator_lag_events") == 0
        assert _metric(text, "meterline_webhook_backlog") == 0
        assert _metric(text, "meterline_up") == 1
    finally:
        receiver.down()
        server.stop()


def test_a_stalled_evaluator_makes_health_answer_503(tmp_path: Path) -> None:
    # The lag health reports is read from the database, whatever runs the engine: threads here.
    server = _server(
        tmp_path, **ENGINE_IN_THREADS, METERLINE_EVALUATOR_ENABLED="false", METERLINE_HEALTH_MAX_LAG_S="1"
    )
    try:
        api = httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=30)
        assert api.post("/v1/ingest", json=_events(3)).status_code == 200
        answer = wait_for(lambda: httpx.get(f"{server.base_url}/health"), lambda got: got.status_code == 503)
        assert answer.headers["retry-after"] == "1"
        body = answer.json()
        assert body["down"] == ["evaluator"]
        assert body["evaluator"]["lag_events"] == 3 and body["evaluator"]["lag_s"] > 1
        assert _metric(api.get("/metrics").text, "meterline_up") == 0
    finally:
        server.stop()


def test_a_full_disk_makes_health_answer_503(tmp_path: Path) -> None:
    # More free space demanded than any disk has: the check a nearly full disk fails.
    # The disk check is the server's own, whatever runs the engine: threads here.
    server = _server(tmp_path, **ENGINE_IN_THREADS, METERLINE_HEALTH_MIN_FREE_DISK_BYTES=str(10**18))
    try:
        answer = httpx.get(f"{server.base_url}/health")
    except Exception:
        server.stop()
        raise
    server.stop()
    assert answer.status_code == 503
    assert answer.json()["down"] == ["database"]
    assert "bytes free" in answer.json()["database"]["problems"][0]


@pytest.mark.slow
def test_a_crash_looping_engine_part_makes_health_answer_503(tmp_path: Path) -> None:
    server = _server(tmp_path, METERLINE_HEALTH_MAX_RECENT_RESTARTS="2")
    try:
        for _ in range(2):
            pid = _part_pid(server, "evaluator")
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda pid=pid: _part_pid(server, "evaluator"), lambda got, pid=pid: got != pid, 20)
        answer = wait_for(lambda: httpx.get(f"{server.base_url}/health"), lambda got: got.status_code == 503)
        assert answer.json()["down"] == ["engine.evaluator"]
        assert answer.json()["engine"]["evaluator"]["recent_restarts"] == 2
    finally:
        server.stop()


def _part_pid(server: RunningServer, part: str) -> int:
    """The latest pid the server logged for the part's process."""
    pids = re.findall(
        rf'"part": "{part}", "pid": (\d+)|"pid": (\d+), "part": "{part}"', server.log_path.read_text()
    )
    found = [int(a or b) for a, b in pids]
    assert found, server.log_path.read_text()[-2000:]
    return found[-1]
