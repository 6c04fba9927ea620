"""`/health` and `/metrics`: what each part of meterline is doing, cheaply enough to be polled.

Each poll takes two indexed statements (the evaluator's cursor and the delivery backlog on the
state database; the event log's end and the oldest unevaluated event on the log), a `statvfs`
of the database's directory on SQLite, and what the server already knows: whether the engine's
processes are alive and how often they were restarted lately, and whether ingest's last commit
failed. `/health` answers 503 (with Retry-After) when a part is down or the evaluator lags past
the thresholds in settings; the same readings are gauges in `/metrics`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from meterline.api.state import AppState
from meterline.store.health import BACKLOG_COUNT_CAP, LogReadings, StateReadings, log_readings, state_readings

# A commit that failed this recently (and none succeeded since) means the database is not writable.
WRITE_FAILURE_WINDOW_S = 30.0


@dataclass(frozen=True, slots=True)
class Report:
    healthy: bool
    body: dict[str, Any]
    gauges: dict[str, float]


def report(state: AppState, now_us: int) -> Report:
    settings = state.settings
    database, readings = _database(state)
    parts = {name: check() for name, check in state.parts.items()}
    engine = {
        name: {
            "status": "ok" if p.alive and p.recent_restarts < settings.health_max_recent_restarts else "down",
            "alive": p.alive,
            "recent_restarts": p.recent_restarts,
        }
        for name, p in parts.items()
    }
    evaluator = _evaluator(state, readings, now_us, engine.get("evaluator"))
    webhooks = _webhooks(state, readings, now_us, engine.get("webhooks"))
    sections = {"database": database, "engine": engine, "evaluator": evaluator, "webhooks": webhooks}
    down = [
        name
        for name, section in (("database", database), ("evaluator", evaluator), ("webhooks", webhooks))
        if section["status"] == "down"
    ] + [f"engine.{name}" for name, part in engine.items() if part["status"] == "down"]
    body = {"status": "ok" if not down else "down", "down": down, **sections}
    gauges = {
        "meterline_up": 0.0 if down else 1.0,
        "meterline_evaluator_lag_events": float(evaluator.get("lag_events", 0)),
        "meterline_evaluator_lag_seconds": float(evaluator.get("lag_s", 0.0)),
        "meterline_webhook_backlog": float(webhooks.get("backlog", 0)),
        "meterline_webhook_oldest_undelivered_age_seconds": float(
            webhooks.get("oldest_undelivered_age_s", 0.0)
        ),
        "meterline_engine_part_restarts_recent": float(sum(p.recent_restarts for p in parts.values())),
    }
    return Report(not down, body, gauges)


def _database(state: AppState) -> tuple[dict[str, Any], tuple[StateReadings, LogReadings] | None]:
    db = state.db
    problems: list[str] = []
    readings = None
    try:
        with db.read() as conn:
            engine_state = state_readings(conn)
        with db.log_read() as log_conn:
            log = log_readings(log_conn, engine_state.cursor)
        readings = (engine_state, log)
        if engine_state.read_only:
            problems.append("the database is read-only")
    except Exception as error:
        problems.append(f"the database cannot be read: {type(error).__name__}")
    if db.is_sqlite:
        problems.extend(
            _sqlite_file_problems([db.url, db.log_url], state.settings.health_min_free_disk_bytes)
        )
    failed_at = state.writer.last_failure_monotonic
    if failed_at is not None and time.monotonic() - failed_at < WRITE_FAILURE_WINDOW_S:
        problems.append("ingest's last commit failed")
    section: dict[str, Any] = {"status": "down" if problems else "ok", "dialect": db.dialect}
    if problems:
        section["problems"] = problems
    return section, readings


def _sqlite_file_problems(urls: list[str], min_free_bytes: int) -> list[str]:
    problems = []
    for path in {
        Path(make_url(u).database or "") for u in urls if make_url(u).database not in (None, "", ":memory:")
    }:
        folder = path.parent
        if (path.exists() and not os.access(path, os.W_OK)) or not os.access(folder, os.W_OK):
            problems.append(f"{path.name} is not writable")
        stats = os.statvfs(folder)
        free = stats.f_bavail * stats.f_frsize
        if free < min_free_bytes:
            problems.append(
                f"the disk holding {path.name} has {free} bytes free (at least {min_free_bytes} needed)"
            )
    return problems


def _evaluator(
    state: AppState,
    readings: tuple[StateReadings, LogReadings] | None,
    now_us: int,
    part: dict[str, Any] | None,
) -> dict[str, Any]:
    settings = state.settings
    if readings is None:
        return {"status": "down", "problems": ["no readings (see database)"]}
    engine_state, log = readings
    lag_events = max(0, log.last_seq - engine_state.cursor)
    lag_s = 0.0 if log.oldest_unevaluated_us is None else max(0.0, (now_us - log.oldest_unevaluated_us) / 1e6)
    problems = []
    if lag_s > settings.health_max_lag_s:
        problems.append(f"evaluation is {lag_s:.0f} s behind (more than {settings.health_max_lag_s:g})")
    if lag_events > settings.health_max_lag_events:
        problems.append(
            f"evaluation is {lag_events} events behind (more than {settings.health_max_lag_events})"
        )
    section: dict[str, Any] = {
        "status": "down" if problems else "ok",
        "running": "here" if part is not None else "elsewhere or off",
        "cursor": engine_state.cursor,
        "last_event_seq": log.last_seq,
        "lag_events": lag_events,
        "lag_s": round(lag_s, 3),
    }
    if problems:
        section["problems"] = problems
    return section


def _webhooks(
    state: AppState,
    readings: tuple[StateReadings, LogReadings] | None,
    now_us: int,
    part: dict[str, Any] | None,
) -> dict[str, Any]:
    if not state.webhooks_on:
        return {"status": "off", "enabled": False}
    section: dict[str, Any] = {"status": "ok", "enabled": True}
    if readings is not None:
        engine_state = readings[0]
        oldest = engine_state.oldest_pending_us
        section["backlog"] = engine_state.backlog
        section["backlog_counted_up_to"] = BACKLOG_COUNT_CAP
        section["oldest_undelivered_age_s"] = (
            0.0 if oldest is None else round(max(0, now_us - oldest) / 1e6, 3)
        )
    if part is not None and part["status"] == "down":
        section["status"] = "down"
        section["problems"] = ["the delivery process is down"]
    return section
