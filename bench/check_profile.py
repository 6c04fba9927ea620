"""Where an access check's CPU goes (`python bench/access.py --profile`): checks of 100 customers,
one at a time, in this process on the bench's database, each part of the check's server-side
work timed as the route does it (the reads and the decisions, their views, the JSON).

Three passes over the same checks: one plain, timing the whole check on this thread's CPU clock
(what a check costs); one timing each check alone, on the wall clock (what `Server-Timing`
reports), on the thread's CPU clock, and counting the times the kernel took the core from the
thread meanwhile (involuntary context switches), so that a check's tail can be told apart: its
own work, or waiting for a core; and one under cProfile on the CPU clock, whose cumulative
times split it into parts (waiting for PostgreSQL's answer is no part of the CPU). The
profiler slows Python calls more than the database's own work, so the parts are given as shares
of the profiled pass, then as those shares of the plain pass's CPU: a breakdown, not exact times.
"""

from __future__ import annotations

import cProfile
import pstats
import random
import resource
import time
from collections.abc import Sequence
from typing import Any

from bench.latency import nearest_rank
from meterline.api.access_stream import decision_view
from meterline.api.responses import ExactJSONResponse
from meterline.domain.timeutil import now_us
from meterline.services.access import decisions
from meterline.store.db import Database

# (label, module file ending, function): the parts, each a function the check calls.
PARTS = (
    ("the whole check", "bench/check_profile.py", "_one_check"),
    ("reads (store.access.read_facts)", "store/access.py", "read_facts"),
    ("  of which rows -> facts (_facts)", "store/access.py", "_facts"),
    ("  of which pooled connections", "store/db.py", "_driver_connection"),
    ("decisions (domain.access.decide)", "domain/access.py", "decide"),
    ("views (decision_view)", "api/access_stream.py", "decision_view"),
    ("JSON (ExactJSONResponse.render)", "api/responses.py", "render"),
)


def profile_checks(database_url: str, refs: Sequence[str], checks: int, seed: int = 5) -> dict[str, Any]:
    """The CPU of a check of 100 of `refs` (plain pass), and its parts' shares (profiled pass)."""
    rng = random.Random(seed)
    picks = [[rng.choice(refs) for _ in range(100)] for _ in range(64)]
    db = Database(database_url, pool_size=2)
    try:
        for pick in picks:  # warm: statements prepared, caches filled
            _one_check(db, pick)
        started = time.thread_time()
        for index in range(checks):
            _one_check(db, picks[index % len(picks)])
        plain_ms = (time.thread_time() - started) * 1000 / checks
        tail = _each_check(db, picks, checks)
        profiler = cProfile.Profile(time.thread_time)  # CPU, as the plain pass: waits are not parts
        profiler.enable()
        for index in range(checks):
            _one_check(db, picks[index % len(picks)])
        profiler.disable()
    finally:
        db.dispose()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    whole = cumulative_seconds(stats, PARTS[0][1], PARTS[0][2]) or 1e-9
    parts = []
    for label, path, name in PARTS:
        share = cumulative_seconds(stats, path, name) / whole
        parts.append({"part": label, "share": round(share, 3), "cpu_ms": round(share * plain_ms, 3)})
    return {
        "checks": checks,
        "cpu_ms_per_check": round(plain_ms, 3),
        "parts": parts,
        "top": top_functions(stats, whole),
        "each_check": tail,
    }


def _each_check(db: Database, picks: list[list[str]], checks: int) -> dict[str, Any]:
    """Each check's wall and CPU milliseconds, and whether the kernel preempted its thread."""
    wall, cpu, calm_wall, preempted = [], [], [], 0
    for index in range(checks):
        switches = resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw
        started, started_cpu = time.perf_counter(), time.thread_time()
        _one_check(db, picks[index % len(picks)])
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.thread_time() - started_cpu) * 1000)
        if resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw != switches:
            preempted += 1
        else:
            calm_wall.append(wall[-1])
    return {
        "wall": _percentiles(wall),
        "cpu": _percentiles(cpu),
        "preempted_share": round(preempted / checks, 3),
        "wall_not_preempted": _percentiles(calm_wall),
    }


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples) or [0.0]
    return {f"p{p}_ms": round(nearest_rank(ordered, p) or 0.0, 3) for p in (50, 99)}


def _one_check(db: Database, refs: list[str]) -> int:
    """What the check route does between its clock's start and its answer (the body's length)."""
    found = decisions(db, refs, now_us())
    return len(ExactJSONResponse({"data": [decision_view(d) for d in found]}).body)


def cumulative_seconds(stats: dict[Any, Any], path: str, name: str) -> float:
    """Cumulative seconds of the functions `name` in files ending `path` (recursion counted once
    by cProfile)."""
    return float(
        sum(entry[3] for (file, _line, func), entry in stats.items() if func == name and file.endswith(path))
    )


def top_functions(stats: dict[Any, Any], whole: float, count: int = 12) -> list[dict[str, Any]]:
    """The functions where the profiled pass spent the most time of their own."""
    ranked = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:count]
    return [
        {
            "function": f"{file.rsplit('/', 2)[-1] if '/' in file else file}:{func}",
            "own_share": round(e[2] / whole, 3),
        }
        for (file, _line, func), e in ranked
    ]
