"""The CPU a test run costs, counting every process it starts, and what one server start costs.

    python bench/suite_cpu.py run [--tree DIR ...] -- -n 4 tests/spend
        runs `pytest -q -p no:cacheprovider ARGS` in each checkout DIR (its own .venv), alternating
        A, B, B, A when given two, and prints each run's user + sys CPU-s.
    python bench/suite_cpu.py starts [--tree DIR ...] [--count 5] [--backend sqlite|postgres]
        starts and stops `meterline serve` COUNT times in each checkout, alternating the same way,
        and prints the CPU-s per start (the server, its fork server and engine processes).

`time` misses the CPU of processes that outlive their parent (a server's fork server and engine
parts are re-parented when the server exits), so this process makes itself the child subreaper of
everything it starts (`prctl(PR_SET_CHILD_SUBREAPER)`): orphans are re-parented to it, it reaps them,
and `getrusage(RUSAGE_CHILDREN)` then counts all of them. Linux only.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
REAP_GRACE_S = 30.0
START_TIMEOUT_S = 60.0
POSTGRES_ENV = "METERLINE_TEST_POSTGRES_URL"
CREATED: list[tuple[str, str]] = []  # (server URL, database name) of the PostgreSQL databases made


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def reap_all(grace_s: float = REAP_GRACE_S) -> None:
    """Wait for every descendant re-parented here; after `grace_s`, SIGKILL what is left."""
    deadline = time.monotonic() + grace_s
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            continue
        if time.monotonic() > deadline:
            for child in _children():
                os.kill(child, signal.SIGKILL)
            deadline = time.monotonic() + grace_s
        time.sleep(0.05)


def _children() -> list[int]:
    """Processes whose parent is this one (orphans re-parented here included)."""
    mine = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == mine:
                found.append(int(entry.name))
    return found


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(action: Callable[[], None]) -> tuple[float, float]:
    """(CPU-s of every process `action` started, wall-s), once all of them are reaped."""
    cpu_before, wall_before = children_cpu_s(), time.monotonic()
    action()
    reap_all()
    return children_cpu_s() - cpu_before, time.monotonic() - wall_before


def alternating(trees: list[Path], rounds: int) -> list[Path]:
    """A, B, B, A, ... for two checkouts; each in turn for one or more than two."""
    if len(trees) != 2:
        return trees * rounds
    order: list[Path] = []
    for i in range(rounds):
        order += trees if i % 2 == 0 else trees[::-1]
    return order


def run_pytest(tree: Path, args: list[str]) -> Callable[[], None]:
    def action() -> None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        # A second -q would hide pytest's summary line (its counts), which this prints.
        quiet = [] if "-q" in args else ["-q"]
        no_cache = [] if "no:cacheprovider" in args else ["-p", "no:cacheprovider"]
        command = [str(tree / ".venv/bin/python"), "-m", "pytest", *quiet, *no_cache, *args]
        done = subprocess.run(command, cwd=tree, env=env, stdout=subprocess.PIPE, text=True)
        with tempfile.NamedTemporaryFile("w", prefix="suite-cpu-", suffix=".log", delete=False) as log:
            log.write(done.stdout)
        print(
            "    " + (done.stdout.strip().splitlines() or ["(no output)"])[-1] + f" (output: {log.name})",
            flush=True,
        )

    return action


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except OSError as error:
        return getattr(error, "code", None) == 503  # answering: a part still starting


def _database_url(backend: str, workdir: Path, tree: Path) -> str:
    """A database migrated to the head, as the tests' servers start on (they migrate first)."""
    url = f"sqlite:///{workdir / 'meterline.db'}"
    if backend == "postgres":
        server = os.environ.get(POSTGRES_ENV, "postgresql://postgres@127.0.0.1:5432/postgres")
        name = f"suite_cpu_{os.getpid()}_{time.monotonic_ns()}"
        url = server.rsplit("/", 1)[0] + f"/{name}"
        CREATED.append((server, name))  # `migrate` creates it; dropped at the end (`drop_created`)
    migrate = [str(tree / ".venv/bin/meterline"), "migrate", "--database-url", url]
    subprocess.run(migrate, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return url


def drop_created() -> None:
    for server, name in CREATED:
        drop = ["dropdb", "--force", "--if-exists", f"--maintenance-db={server}", name]
        subprocess.run(drop, check=False)


def serve_once(tree: Path, backend: str) -> Callable[[], None]:
    """One `meterline serve` started, answering /health, then stopped with SIGTERM (as the tests'
    servers are). The database is made before the measured part (outside `action`) on PostgreSQL."""
    workdir = Path(tempfile.mkdtemp(prefix="suite-cpu-"))
    url = _database_url(backend, workdir, tree)

    def action() -> None:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env |= {"METERLINE_DATABASE_URL": url, "METERLINE_LOG_LEVEL": "warning"}
        env.setdefault("METERLINE_SECRET_KEY", "bWV0ZXJsaW5lIHRlc3RzOiBub3QgYSBzZWNyZXQhISE=")
        command = [str(tree / ".venv/bin/meterline"), "serve", "--port", str(port)]
        process = subprocess.Popen(command, cwd=workdir, env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(f"http://127.0.0.1:{port}/health"):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SystemExit(f"meterline serve in {tree} did not start")
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        process.wait(30)

    return action


def in_turn(actions: list[Callable[[], None]]) -> Callable[[], None]:
    def action() -> None:
        for each in actions:
            each()

    return action


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["run", "starts"])
    parser.add_argument("--tree", action="append", type=Path, help="a checkout with its .venv (default: .)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of A, B (B, A the next)")
    parser.add_argument("--count", type=int, default=5, help="server starts per measurement")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    options = parser.parse_args(argv[:split])
    pytest_args = argv[split + 1 :]
    trees = [t.resolve() for t in (options.tree or [Path(".")])]
    become_subreaper()
    print(f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    try:
        measure_each(trees, options, pytest_args)
    finally:
        drop_created()
    print(f"load average {os.getloadavg()[0]:.1f} at the end", flush=True)


def measure_each(trees: list[Path], options: argparse.Namespace, pytest_args: list[str]) -> None:
    totals: dict[Path, list[float]] = {t: [] for t in trees}
    for tree in alternating(trees, options.rounds):
        if options.mode == "run":
            cpu_s, wall_s = measured(run_pytest(tree, pytest_args))
            print(f"{tree}: {cpu_s:.1f} CPU-s, {wall_s:.0f} s wall", flush=True)
        else:
            cpu_s, wall_s = measured(
                in_turn([serve_once(tree, options.backend) for _ in range(options.count)])
            )
            cpu_s /= options.count
            print(
                f"{tree}: {cpu_s:.2f} CPU-s a start ({options.backend}, {options.count} starts)", flush=True
            )
        totals[tree].append(cpu_s)
    for tree, figures in totals.items():
        print(f"{tree}: mean {sum(figures) / len(figures):.2f} over {len(figures)}: {figures}")


if __name__ == "__main__":
    main()
