"""Interpreter tuning for meterline's long-running processes (the server and the engine's parts).

The evaluator allocates many short-lived objects per batch (rows, records, Decimals, dicts of
line items). With CPython's default thresholds the cyclic garbage collector runs every 700 net
allocations and walks ever larger generations, which measured 15-20 % of the evaluator's CPU
(`bench/evaluator_cost.py`: 67 -> 55 µs per event at 6 events per customer per batch). Reference
counting frees almost all of these objects anyway; the collector is only for cycles, so it can
run far less often. Objects alive at start-up (modules, the app) are frozen out of its walks.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (50_000, 50, 100)


def tune_for_long_running() -> None:
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
