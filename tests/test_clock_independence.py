"""The suite does not depend on today's date: tests that move with the clock pass 60 days from now.

A sample of them runs in a pytest subprocess whose every Python process (the test process, each
`meterline serve` it starts, and the engine processes those spawn) reads a wall clock 60 days
ahead: tests/support/shifted_clock/sitecustomize.py, first on PYTHONPATH, moves it with
time-machine. A test that wrote a fixed date where it meant "recently" (an event timestamp, a
contract start, the expected billing period) fails there, as it would on a real day 60 days on;
one that derives its times from now or from the injected clock passes. Nothing in meterline knows
about it: the shift lives in the tests' folder and is on no user's PYTHONPATH.

The sample covers each way a test meets the date: ingest's window around now, invoices and their
billing periods (this month's draft, last month's finalization and grace), commit segments that
expire, spend alerts across a period rollover and a spend forecast falling with the clock, on
the injected clock, and SCHEDULED invoices finalized on their dates (by the server's engine, and
on the injected clock); the server's evaluator, in an engine process of its own, bills on the
moved clock too. It runs on SQLite: PostgreSQL's own
clock is not read by meterline, so its variants would add time and nothing else.

The servers are on the moved clock as well, or they would refuse the tests' recent events as too
far in the future (and, checked below, any Python process started this way reads the moved clock).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

DAYS_AHEAD = 60
ROOT = Path(__file__).resolve().parent.parent
SHIFTED_CLOCK = ROOT / "tests" / "support" / "shifted_clock"
SAMPLE = [
    "tests/integration/test_subscription_billing.py::test_quantity_changes_are_prorated_across_period_ends[sqlite]",
    "tests/integration/test_alert_time.py::test_new_billing_period_returns_spend_alerts_to_ok_and_they_fire_again[sqlite]",
    "tests/integration/test_forecast_alerts.py::test_a_pace_that_reaches_the_threshold_by_the_period_end_alarms_then_resolves_with_the_clock[sqlite]",
    "tests/sdk/test_usage.py::test_day_windows_split_at_midnight_utc[sqlite]",
    "tests/sdk/test_usage.py::test_a_batch_with_an_invalid_event_is_refused_whole[sqlite]",
    "tests/sdk/test_billing_invoices.py::test_flat_rate_draft_moves_live_and_ignores_duplicates[sqlite]",
    "tests/sdk/test_billing_invoices.py::test_event_backdated_into_a_previous_period_still_in_grace_lands_on_its_draft[sqlite]",
    "tests/sdk/test_billing_invoices.py::test_event_backdated_into_a_finalized_period_is_refused[sqlite]",
    "tests/sdk/test_billing_balances.py::test_usage_before_a_credit_becomes_accessible_does_not_draw_it[sqlite]",
    "tests/sdk/test_alerts_types.py::test_low_remaining_days_in_plan_reached[sqlite]",
    "tests/sdk/test_auth.py::test_a_wrong_token_cannot_ingest[sqlite]",
    "tests/sdk/test_scheduled_invoices.py::test_an_item_whose_date_has_come_is_finalized_by_the_engine[sqlite]",
    "tests/integration/test_scheduled_invoice_time.py::test_scheduled_invoices_finalize_on_their_dates_once_across_restarts[sqlite]",
]

pytestmark = pytest.mark.slow


def shifted_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SHIFTED_CLOCK), env.get("PYTHONPATH")) if p)
    env["METERLINE_TESTS_CLOCK_AHEAD_DAYS"] = str(DAYS_AHEAD)
    env["METERLINE_TEST_POSTGRES_URL"] = "off"
    return env


def shifted_now() -> float:
    """The wall clock a Python process started with `shifted_env()` reads."""
    probe = [sys.executable, "-c", "import time; print(time.time())"]
    return float(subprocess.run(probe, env=shifted_env(), capture_output=True, text=True, check=True).stdout)


def test_time_sensitive_tests_pass_with_the_clock_60_days_ahead(tmp_path: Path) -> None:
    # One process, serially; time-machine's pytest plugin is off: the clock moved before pytest started.
    options = ["-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:time_machine"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *options, f"--basetemp={tmp_path / 'run'}", *SAMPLE],
        cwd=ROOT,
        env=shifted_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert f"{len(SAMPLE)} passed" in run.stdout, run.stdout[-2000:]


def test_processes_started_for_the_sample_read_the_moved_clock() -> None:
    """What makes the test above mean anything: the clock moved in every Python process."""
    assert abs(shifted_now() - time.time() - DAYS_AHEAD * 86_400) < 60
