"""The benchmark harness end to end at a tiny scale: clone seeding, load, evaluation, webhooks, JSON line.

Runs `bench.run` as `make bench-quick` does, with 10 customers, runs of about a second and a
burst of 30 crossings.
"""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import pytest
from bench import run
from bench.bodies import EVENTS_PER_BATCH, Spread, burst_batches, spread_batches
from bench.latency import crossing_acks
from bench.plan import AlertKind, Plan, alert_name
from bench.stages import STAGES

CUSTOMERS = 10
EVENTS_PER_CUSTOMER = 10
BURST = 30


@pytest.mark.slow
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
            f"--burst-customers={BURST}",
            f"--workdir={tmp_path / 'work'}",
            f"--output-dir={output}",
        ]
    )

    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(line) == {
        "events_per_s",
        "floor_events_per_s",
        "ratio_to_floor",
        "alert_p99_ms",
        "alert_p99_ms_at_80",
        "burst_delivered_s",
        "customers",
    }
    assert line["customers"] == CUSTOMERS
    assert line["events_per_s"] > 0 and line["floor_events_per_s"] > 0 and line["ratio_to_floor"] > 0

    measured = results["databases"]["sqlite"][str(CUSTOMERS)]
    first = measured["runs"][0]
    # Events were acknowledged, and the run waited until the evaluator had processed every one.
    assert first["acked_events"] > 0 and not first["failures"]
    assert first["seconds_to_evaluate"] >= first["seconds_to_ack"] > 0
    # (b) at 50% and 80% of (a): after a warm-up whose webhooks are not counted, every threshold
    # of every crossing customer was crossed in the measured phase and its webhook received, with
    # a latency; the background customers, already past theirs, sent none.
    assert set(first["latency"]) == {"50", "80"}
    for latency in first["latency"].values():
        assert latency["warmup_webhooks"] == 3 * latency["background_customers"]
        assert latency["expected"] == 3 * latency["crossing_customers"]
        assert latency["webhooks"] == latency["expected"] and latency["missing"] == 0
        assert latency["unexpected"] == 0 and latency["p99_ms"] is not None
        assert 3 * latency["crossing_customers"] <= 200 * 1 and latency["background_customers"] >= 1
        # Split at the start of the evaluator batch that measured the crossing (the payload's
        # timestamp, cut to the millisecond, so never after the arrival).
        assert latency["to_batch_p50_ms"] is not None and latency["to_batch_p50_ms"] <= latency["max_ms"]
        assert latency["after_batch_start_p50_ms"] >= 0
    assert first["latency"]["80"]["rate_events_per_s"] > first["latency"]["50"]["rate_events_per_s"]

    # (e) one SOFT crossing per burst customer, each webhook received; the bare client posted the
    # same webhooks to a receiver of the same kind.
    burst = results["databases"]["sqlite"]["burst"]["runs"][0]
    assert burst["expected"] == BURST and burst["webhooks"] == BURST and burst["unexpected"] == 0
    assert burst["delivered_s"] > 0 and burst["bare_client_s"] > 0 and burst["ratio_to_bare_client"] > 0
    assert burst["server_cpu_s"] > 0  # the evaluator measured the crossings, delivery sent them
    assert line["burst_delivered_s"] == burst["delivered_s"]
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


@pytest.mark.slow
def test_latency_and_burst_alone_at_a_given_rate_split_each_webhook_s_latency_into_stages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = run.main(
        [
            "--quick",
            "--database=sqlite",
            f"--customers={CUSTOMERS}",
            "--only",
            "latency",
            "burst",
            # Low rates: the test proves that the harness runs and splits each webhook into stages,
            # not the server's speed (at 2,000 events/s it cost about 45 CPU-seconds).
            "--evaluated-rate=500",
            "--stages",
            "--latency-seconds=1",
            f"--events-per-customer={EVENTS_PER_CUSTOMER}",
            "--connections=4",
            "--verify-sample=3",
            f"--burst-customers={BURST}",
            f"--workdir={tmp_path / 'work'}",
            f"--output-dir={tmp_path / 'results'}",
            "--no-plot",
        ]
    )

    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # (a), (d) and the ceiling did not run; (b) ran at 50% and 80% of the rate given.
    assert line["events_per_s"] is None and "generator_ceiling" not in results
    first = results["databases"]["sqlite"][str(CUSTOMERS)]["runs"][0]
    assert "acked_events" not in first
    assert [first["latency"][s]["rate_events_per_s"] for s in ("50", "80")] == [250, 400]
    # Every webhook of (b) and (e) traced through the server's log, from the acknowledgement
    # that crossed its threshold to its arrival, one stage after the other.
    burst = results["databases"]["sqlite"]["burst"]["runs"][0]
    for measured in [*first["latency"].values(), burst]:
        stages = measured["stages"]
        assert stages["traced"] == measured["webhooks"] == measured["expected"] > 0
        for stage in STAGES:
            assert stages[stage]["p50_ms"] is not None and stages[stage]["p99_ms"] >= stages[stage]["p50_ms"]
        # The batch began reading after the crossing event was acknowledged (the acknowledgement
        # follows its commit) and committed before the claim was handed over, within a clock tick.
        assert stages["clock_to_commit"]["p50_ms"] > 0 and stages["commit_to_handed"]["p50_ms"] >= 0


def test_spread_batches_give_each_crossing_customer_its_events_within_its_own_window() -> None:
    seconds, window_s, per_customer = 10.0, 2.0, 20
    crossing, background = list(range(100, 400)), list(range(100))
    spread = Spread(crossing, background, per_customer, 100_000, seconds, window_s)
    batches = spread_batches(spread, random.Random(7))

    assert sum(len(b.customers) for b in batches) == 100_000
    assert all(len(b.customers) == EVENTS_PER_BATCH for b in batches)
    where: dict[int, list[int]] = {}
    for k, batch in enumerate(batches):
        for customer in batch.customers:
            where.setdefault(customer, []).append(k)
    assert sorted(where) == background + crossing
    batches_per_window = len(batches) * window_s / seconds
    starts = []
    for customer in crossing:
        assert len(where[customer]) == per_customer
        # Posted at a constant rate, a window's events span about a window's batches.
        assert max(where[customer]) - min(where[customer]) <= batches_per_window * 1.2
        starts.append(min(where[customer]))
    # The windows are staggered over the whole run, not bunched.
    assert min(starts) < batches_per_window * 0.2 and max(starts) > len(batches) - batches_per_window * 1.2


def test_crossings_are_counted_for_the_chosen_customers_from_what_they_already_had() -> None:
    plan = Plan(EVENTS_PER_CUSTOMER)
    soft = plan.events_to_fire(plan.alert(AlertKind.SOFT))
    batches = burst_batches(range(250), random.Random(3))
    acks = [1_000 + k for k in range(len(batches))]

    crossed = crossing_acks(plan, batches, acks, only=set(range(200)), already=soft - 1)

    # One event each: the SOFT threshold of each chosen customer, at its batch's acknowledgement.
    assert set(crossed) == {(c, AlertKind.SOFT) for c in range(200)}
    for k, batch in enumerate(batches):
        assert all(crossed[(c, AlertKind.SOFT)] == acks[k] for c in batch.customers if c < 200)
    assert crossing_acks(plan, batches, acks) == {}  # from nothing, one event crosses nothing
