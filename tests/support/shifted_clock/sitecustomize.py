"""Run by every Python process started with this folder first on PYTHONPATH (the test run of
tests/test_clock_independence.py, the meterline servers it starts and their engine processes):
moves the wall clock METERLINE_TESTS_CLOCK_AHEAD_DAYS days ahead, still ticking.

time-machine patches every way Python reads the wall clock (time.time and time_ns, datetime.now,
date.today, gmtime, ...); monotonic clocks, and so every timeout and sleep, are left as they are.
"""

import os
import time

import time_machine

_days = os.environ.get("METERLINE_TESTS_CLOCK_AHEAD_DAYS")
if _days:
    time_machine.travel(time.time() + float(_days) * 86_400, tick=True).start()
