"""Where the engine's processes come from: a fork server, a fresh interpreter that imports meterline
once and forks each part (and each restart of one) from that.

A part started by "spawn" imported meterline again, about a CPU-second per part per server start.
Forking the server itself would hand the part the server's threads and database connections; the
fork server has neither (it only imports: no module of meterline starts a thread or opens a
connection when imported), and a part receives only the pipe ends it is given, as with spawn.

This module imports nothing of meterline, so `meterline serve` can start the fork server first
and let it import while the server imports and opens its database (`start_early`).
"""

from __future__ import annotations

import multiprocessing
from multiprocessing import forkserver
from multiprocessing.context import ForkServerContext

# What a part's process needs, imported once by the fork server rather than again by each process:
# the engine, and what the command line imports (a part's process runs the server's main module,
# `meterline.cli`, again, as with spawn; preloading that module itself would make runpy warn).
# The parts' own modules (webhook delivery, the hand-over to it) are imported by the parts only,
# never by the server, which starts faster without them.
PRELOAD = [
    "typer",
    "rich.console",
    "meterline.runtime.engine_processes",
    "meterline.delivery.dispatcher",
    "meterline.delivery.handoff",
]


def engine_context() -> ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def start_early() -> None:
    """Start the fork server now, without waiting for its imports; the first part started waits
    for them, by then mostly done."""
    engine_context()
    forkserver.ensure_running()
