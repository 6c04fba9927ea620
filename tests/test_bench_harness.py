"""The benchmark harness end to end at a tiny scale: clone seeding, load, evaluation, webhooks, JSON line.

Runs `bench.run` as `make bench-quick` does, with 10 customers and runs of about a second.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from bench import run
from bench.plan import AlertKind, Plan, alert_name

CUSTOMERS = 10
EVENTS_PER_CUSTOMER = 10


def test_the_harness_measures_a_real_server_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "results"
    results = run.main(
        [
            "--quick",
            "--database=sqlite",
            f"--customers={CUSTOMERS}",
            "--seconds=1",
            "--latency-seconds=1",
            "--ceiling-seconds=0.3",
            "--floor-seconds=0.3",
            f"--events-per-customer={EVENTS_PER_CUSTOMER}",
            "--connections=4",
            "--max-events-per-s=5000",
            "--verify-sample=3",
            f"--workdir={tmp_path / 'work'}",
            f"--output-dir={output}",
        ]
    )

    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(line) == {"events_per_s", "floor_events_per_s", "ratio_to_floor", "alert_p99_ms", "customers"}
    assert line["customers"] == CUSTOMERS
    assert line["events_per_s"] > 0 and line["floor_events_per_s"] > 0 and line["ratio_to_floor"] > 0

    measured = results["databases"]["sqlite"][str(CUSTOMERS)]
    first = measured["runs"][0]
    # Events were acknowledged, and the run waited until the evaluator had processed every one.
    assert first["acked_events"] > 0 and not first["failures"]
    assert first["seconds_to_evaluate"] >= first["seconds_to_ack"] > 0
    # The receiver got the webhooks of the thresholds crossed in (b), each with a latency.
    latency = first["latency"]
    assert latency["webhooks"] >= 1 and latency["missing"] == 0 and latency["p99_ms"] is not None
    # Split at the start of the evaluator batch that measured the crossing (the payload's
    # timestamp, cut to the millisecond, so never after the arrival).
    assert latency["to_batch_p50_ms"] is not None and latency["to_batch_p50_ms"] <= latency["max_ms"]
    assert latency["after_batch_start_p50_ms"] >= 0
    assert results["generator_ceiling"]["median"] > 0

    # The seeder read clones back through the API: by id and alias, each with the template's
    # three alerts (same types, thresholds, status), named after its own alias.
    verified = measured["seed"]["verified"]
    assert len(verified) >= 2
    thresholds = sorted(int(spec.threshold) for spec in Plan(EVENTS_PER_CUSTOMER).alerts)
    for clone in verified:
        alias = clone["alias"]
        names = sorted(name.replace("<alias>", alias) for name, _type, _threshold, _status in clone["alerts"])
        assert names == sorted(alert_name(kind, alias) for kind in AlertKind)
        assert sorted(threshold for _name, _type, threshold, _status in clone["alerts"]) == thresholds
        assert {status for *_rest, status in clone["alerts"]} == {"ok"}

    assert (output / "results.json").exists()
    if importlib.util.find_spec("matplotlib") is not None:
        assert (output / "throughput_latency.png").stat().st_size > 0
