"""The machine and software versions the figures were measured with."""

from __future__ import annotations

import os
import platform
import sqlite3
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
