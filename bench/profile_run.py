"""Where the time goes during workload (a): py-spy on the server and its engine processes.

Runs the benchmark's throughput workload (`python -m bench.run`, one run at 1,000 customers by
default) and, once its server is under load, samples that server and its engine processes with
py-spy for `--duration` seconds. Each process is named by what its stacks run (the API server's
event loop and group commit, the evaluator, webhook delivery), and for each the functions of
meterline (and the libraries under them) are listed by the share of its samples they appear in.
The raw samples (collapsed stacks, one per line, for flame graph tools) are written beside.

    python bench/profile_run.py [--database sqlite|postgresql] [--duration 10] [--out profile.txt]

py-spy must be installed (it is in the `bench` extra) and allowed to read other processes
(run as root, or with ptrace permitted).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from rich.console import Console

REPOSITORY = Path(__file__).resolve().parent.parent
ROLES = (  # the first whose marker a stack holds names the process
    ("evaluator", "Evaluator.run_forever"),
    ("webhook delivery", "Dispatcher._run"),
    ("API server", "uvicorn"),
    ("API server", "GroupCommitWriter"),
)
SHOWN = ("meterline", "sqlalchemy", "psycopg", "sqlite3", "aiohttp", "uvicorn", "msgspec")
console = Console(stderr=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds sampled under load")
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--top", type=int, default=25, help="functions listed per process")
    parser.add_argument("--out", type=Path, default=REPOSITORY / "bench/results/quick/profile.txt")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    raw = args.out.with_suffix(".raw")
    log = args.out.with_suffix(".bench.log")
    seconds = args.duration + 15  # the load outlasts the sampling
    with log.open("w") as bench_log:
        bench = subprocess.Popen(
            [sys.executable, "-m", "bench.run", "--database", args.database, "--customers", str(args.customers),
             "--runs", "1", "--seconds", str(seconds), "--latency-seconds", "2", "--no-report", "--no-plot"],
            cwd=REPOSITORY, stdout=bench_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            server = _server_under_load(bench, log)
            console.print(f"sampling server {server} and its engine processes for {args.duration:.0f} s")
            before, started = _cpu_ticks(bench.pid), time.monotonic()
            subprocess.run(
                [spy, "record", "--pid", str(server), "--subprocesses", "--nonblocking", "--format", "raw",
                 "--rate", str(args.rate), "--duration", str(int(args.duration)), "--output", str(raw)],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            cores = _cores(before, _cpu_ticks(bench.pid), time.monotonic() - started)
        finally:
            bench.wait()
    report = _cpu_report(cores) + _report(raw, args.top)
    args.out.write_text(report)
    print(report)
    console.print(f"written: {args.out} (raw samples: {raw}; the bench's output: {log})")


def _server_under_load(bench: subprocess.Popen[bytes], log: Path) -> int:
    """The pid of the benchmark's server once workload (a) has begun (the seeding's server is gone)."""
    while b"seeded" not in log.read_bytes():
        if bench.poll() is not None:
            raise SystemExit(f"the benchmark ended before its load began: see {log}")
        time.sleep(0.2)
    deadline = time.monotonic() + 60  # the load's bodies are built, then its server starts
    while time.monotonic() < deadline and bench.poll() is None:
        for pid in _descendants(bench.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"meterline.cli" in cmdline and b"serve" in cmdline:
                time.sleep(3)  # past its start, into the load
                return pid
        time.sleep(0.2)
    raise SystemExit(f"no meterline server under load found: see {log}")


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[parent].append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.extend(children[pid])
        todo.extend(children[pid])
    return sorted(found)


def _cpu_ticks(root: int) -> dict[tuple[int, str], int]:
    """User + system CPU ticks of the benchmark's processes, by (pid, command line)."""
    ticks: dict[tuple[int, str], int] = {}
    for pid in [root, *_descendants(root)]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (OSError, IndexError):
            continue
        ticks[(pid, cmdline)] = int(fields[11]) + int(fields[12])  # utime, stime
    return ticks


def _cores(
    before: dict[tuple[int, str], int], after: dict[tuple[int, str], int], seconds: float
) -> dict[tuple[int, str], float]:
    per_second = os.sysconf("SC_CLK_TCK")
    return {key: (after[key] - before.get(key, 0)) / per_second / seconds for key in after}


def _cpu_report(cores: dict[tuple[int, str], float]) -> str:
    """How many cores each of the benchmark's processes used while it was sampled."""
    lines = [f"CPU while sampled ({os.cpu_count()} cores; py-spy's own sampling not included):"]
    for (pid, cmdline), used in sorted(cores.items(), key=lambda item: -item[1]):
        if used >= 0.01:
            lines.append(f"  {used:5.2f} cores  {pid}  {cmdline[:110]}")
    lines.append(f"  {sum(cores.values()):5.2f} cores  in all")
    return "\n".join([*lines, "", ""])


def _report(raw: Path, top: int) -> str:
    """Per process: its samples, and the functions its stacks hold, by share of those samples."""
    samples: Counter[str] = Counter()
    holding: dict[str, Counter[str]] = defaultdict(Counter)
    markers: dict[str, set[str]] = defaultdict(set)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        # With --subprocesses each stack starts with its process's ancestry, itself last.
        process = [f for f in frames if f.startswith("process ")][-1].split(":")[0].removeprefix("process ")
        samples[process] += int(count)
        markers[process].update(name for name, marker in ROLES if marker in stack)
        # One entry per function (line numbers dropped), however deep it recurses.
        for function in {re.sub(r":\d+\)$", ")", f) for f in frames if not f.startswith("process ")}:
            holding[process][function] += int(count)
    lines = [
        f"py-spy samples of the benchmark's server and engine processes ({raw.name}): per process, the",
        "share of its samples each function's frames are in (idle threads are not sampled; a thread",
        "waiting on the database or on an fsync is).",
        "",
    ]
    for process, total in samples.most_common():
        role = next((name for name, _marker in ROLES if name in markers[process]), "other")
        lines.append(f"{role} (process {process}): {total} samples")
        shown = [(f, n) for f, n in holding[process].most_common() if any(s in f for s in SHOWN)]
        lines.extend(f"  {n / total * 100:5.1f}%  {f}" for f, n in shown[:top])
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
