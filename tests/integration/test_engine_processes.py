"""The engine's processes beside a real `meterline serve`: each part restarts when it dies, and
the messages on its pipe are read whole however the reads split them."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import httpx
import pytest

from meterline.domain.timeutil import format_rfc3339, now_us
from meterline.runtime.engine_processes import CLAIM, CLAIM_END, WAKE, parse_messages
from meterline.store import partitions
from meterline.store.db import Database
from tests.delivery.helpers import notify
from tests.delivery.receiver import Receiver
from tests.support.server import RunningServer, start_server
from tests.support.waiting import wait_for

HOUR_US = 3_600_000_000


def _claim(claim_id: str) -> bytes:
    return CLAIM + claim_id.encode() + CLAIM_END


def test_claims_and_wakes_are_read_whole_across_split_reads() -> None:
    stream = WAKE + _claim("c0ffee-1") + WAKE + _claim("c0ffee-2") + _claim("c0ffee-3")
    for cut in range(len(stream) + 1):
        woken_1, ids_1, rest = parse_messages(stream[:cut])
        woken_2, ids_2, left = parse_messages(rest + stream[cut:])
        assert ids_1 + ids_2 == ["c0ffee-1", "c0ffee-2", "c0ffee-3"]  # claim ids contain 'c'
        assert woken_1 or woken_2
        assert left == b""


def _parts_started(log_path: Path) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "engine_part_started"]


def _pid_of(log_path: Path, part: str, generation: int) -> int:
    started = wait_for(
        lambda: [s for s in _parts_started(log_path) if s["part"] == part],
        lambda got: len(got) >= generation,
        timeout_s=60,  # a restart is seconds on a busy machine
    )
    return int(str(started[generation - 1]["pid"]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) counts as gone.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[1][0] != "Z"


@pytest.fixture
def served(tmp_path: Path) -> RunningServer:
    return start_server(
        f"sqlite:///{tmp_path / 'meterline.db'}",
        tmp_path,
        METERLINE_LOG_LEVEL="info",
        METERLINE_WEBHOOK_POLL_INTERVAL_S="0.05",
    )


def test_a_killed_part_is_restarted_and_every_part_exits_with_the_server(served: RunningServer) -> None:
    receiver = Receiver().up()
    db = Database(served.database_url)
    try:
        with httpx.Client(base_url=served.base_url, headers=served.headers(), timeout=10) as api:
            api.post("/v1/webhooks/endpoints/create", json={"url": receiver.url}).raise_for_status()
            delivery, evaluator = (
                _pid_of(served.log_path, "webhooks", 1),
                _pid_of(served.log_path, "evaluator", 1),
            )

            os.kill(delivery, signal.SIGKILL)
            restarted = _pid_of(served.log_path, "webhooks", 2)
            sent = notify(db)
            assert receiver.wait_for_requests(1)[0].webhook_id == sent  # the new process delivers

            os.kill(evaluator, signal.SIGKILL)
            replacement = _pid_of(served.log_path, "evaluator", 2)
            event = {
                "transaction_id": "after-restart",
                "customer_id": "nobody",
                "event_type": "api_call",
                "timestamp": format_rfc3339(now_us() - HOUR_US),
            }
            api.post("/v1/ingest", json=[event]).raise_for_status()
            with db.log_read() as conn:
                last = int(conn.exec_driver_sql("SELECT max(seq) FROM events").scalar_one())
            wait_for(
                lambda: _cursor(db), lambda position: position >= last, timeout_s=60
            )  # the new one evaluates
        served.stop()
        assert not any(_alive(pid) for pid in (delivery, evaluator, restarted, replacement))
    finally:
        served.stop()
        receiver.down()
        db.dispose()


def _cursor(db: Database) -> int:
    with db.read() as conn:
        return min(partitions.positions(conn).values())
