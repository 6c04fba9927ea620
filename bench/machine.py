"""The machine and software versions the figures were measured with."""

from __future__ import annotations

import os
import platform
import sqlite3
import time
from importlib import metadata
from pathlib import Path


def _proc(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    for line in _proc("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    for line in _proc("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return None


def machine() -> dict[str, str]:
    memory = memory_gib()
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count() or "?"),
        "memory": f"{memory:.1f} GiB" if memory is not None else "?",
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions(postgres: str | None = None) -> dict[str, str]:
    found = {
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "msgspec": _version("msgspec"),
        "SQLAlchemy": _version("sqlalchemy"),
        "uvicorn": _version("uvicorn"),
        "uvloop": _version("uvloop"),
        "meterline": _version("meterline"),
    }
    if postgres is not None:
        found["PostgreSQL"] = postgres
    return found


def _ticks() -> dict[int, tuple[str, int]]:
    """Each process's command name and CPU ticks so far (user + system)."""
    found: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        found[int(entry.name)] = (name, int(fields[11]) + int(fields[12]))
    return found


class OtherWork:
    """What else used the cores while a benchmark ran: started, then read once it is over.

    Every process but those `ours()` names (the bench and the server it measures, with their
    children) is counted, grouped by command name, in cores (CPU seconds per second)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.before = _ticks()
        self.load_before = os.getloadavg()

    def cores_by_command(self, ours: set[int]) -> list[tuple[str, float]]:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        ticks_per_s = os.sysconf("SC_CLK_TCK")
        used: dict[str, float] = {}
        for pid, (name, ticks) in _ticks().items():
            if pid in ours:
                continue
            spent = ticks - self.before.get(pid, (name, 0))[1]
            if spent > 0:
                used[name] = used.get(name, 0.0) + spent / ticks_per_s / elapsed
        return sorted(used.items(), key=lambda item: -item[1])

    def cpu_seconds(self, pids: set[int]) -> float:
        """CPU seconds `pids` used since the start (a process started since counts whole)."""
        ticks_per_s = os.sysconf("SC_CLK_TCK")
        return sum(
            (ticks - self.before.get(pid, (name, 0))[1]) / ticks_per_s
            for pid, (name, ticks) in _ticks().items()
            if pid in pids
        )

    def describe(self, ours: set[int], top: int = 5) -> str:
        busiest = self.cores_by_command(ours)
        listed = ", ".join(f"{name} {cores:.2f}" for name, cores in busiest[:top]) or "nothing"
        total = sum(cores for _name, cores in busiest)
        return (
            f"other processes used {total:.2f} of {os.cpu_count()} cores meanwhile ({listed}); "
            f"load average {self.load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after"
        )
