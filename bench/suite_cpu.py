"""The CPU a pytest run costs, every process it starts included, for two checkouts alternating.

    python -m bench.suite_cpu --a ../main-copy --b . [--rounds 2] -- -q -p no:cacheprovider -n 4 tests/engine

Each run is `CHECKOUT/.venv/bin/pytest ARGS` in CHECKOUT, started by this process as the child
subreaper of everything under it (`prctl(PR_SET_CHILD_SUBREAPER)`): servers, fork servers and
engine processes outlive their parents, so `time` misses them, but here they are re-parented to
this process, reaped, and counted in `RUSAGE_CHILDREN`. The runs alternate A, B, B, A (each round
twice, mirrored), so a load that changes through the stretch weighs on both alike. Printed: each
run's user+sys CPU-s and wall, and each checkout's mean with B/A.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import signal
import subprocess
import tempfile
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
ORPHAN_GRACE_S = 30.0  # how long a run's orphans (a database drop, a stopping server) may finish


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def reap_orphans() -> None:
    """Wait for every process re-parented to us; kill the ones still alive after the grace period."""
    deadline = time.monotonic() + ORPHAN_GRACE_S
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            continue
        if time.monotonic() > deadline:
            for child in _our_children():
                os.kill(child, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.1)


def _our_children() -> list[int]:
    me = str(os.getpid())
    found = []
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:  # the parent pid, after the state
            found.append(int(status.parent.name))
    return found


def one_run(checkout: Path, pytest_args: list[str]) -> tuple[float, float, int]:
    """(CPU-s, wall-s, exit code) of one pytest run in `checkout`, its orphans included."""
    before, started = children_cpu_s(), time.monotonic()
    with tempfile.NamedTemporaryFile("w", prefix="suite_cpu-", suffix=".log", delete=False) as output:
        process = subprocess.run(
            [str(checkout / ".venv" / "bin" / "pytest"), *pytest_args],
            cwd=checkout,
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
        )
    reap_orphans()
    if process.returncode != 0:  # a failing run's CPU is not comparable: say which tests failed
        print(f"pytest exited {process.returncode}; its output is in {output.name}", flush=True)
    else:
        os.unlink(output.name)
    return children_cpu_s() - before, time.monotonic() - started, process.returncode


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--a", type=Path, required=True, help="the baseline checkout (with its .venv)")
    parser.add_argument("--b", type=Path, help="the checkout compared with it (none: A alone, once a round)")
    parser.add_argument("--rounds", type=int, default=1, help="A, B, B, A rounds")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: pytest's arguments")
    args = parser.parse_args(argv)
    pytest_args = [a for a in args.pytest_args if a != "--"] or ["-q", "-p", "no:cacheprovider"]
    become_subreaper()
    measured: dict[str, list[float]] = {"A": [], "B": []}
    for _ in range(args.rounds):
        for name in ("A", "B", "B", "A") if args.b else ("A",):
            checkout = args.a if name == "A" else args.b
            cpu_s, wall_s, code = one_run(checkout.resolve(), pytest_args)
            measured[name].append(cpu_s)
            load = os.getloadavg()[0]
            print(
                f"{name} cpu {cpu_s:8.1f} s  wall {wall_s:7.1f} s  exit {code}  load {load:.1f}", flush=True
            )
    mean = {name: sum(runs) / len(runs) for name, runs in measured.items() if runs}
    if "B" not in mean:
        print(f"mean A {mean['A']:.1f} CPU-s")
        return
    print(f"mean A {mean['A']:.1f} CPU-s, B {mean['B']:.1f} CPU-s, B/A {mean['B'] / mean['A']:.2f}")


if __name__ == "__main__":
    main()
