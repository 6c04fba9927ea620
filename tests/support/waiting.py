"""Waiting for what happens elsewhere (a server starting, the evaluator, a dispatcher, a receiver):
the one polling loop of the tests. Usage is eventually consistent with the ack (well under a second).

The default deadline is generous: it is only reached when a test fails, and on two cores shared
with other work an engine batch can take seconds, which says how busy the machine is, not whether
the rule holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    produce: Callable[[], T], accept: Callable[[T], bool], timeout_s: float = 30.0, interval_s: float = 0.05
) -> T:
    """Call `produce` until `accept` holds for its result; return that result or fail with the last one."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = produce()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s; last value: {value!r}")
        time.sleep(interval_s)
