"""Start meterline the way a user does: the `meterline` command, a real process, a free port."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from meterline.store import tokens
from meterline.store.db import Database
from meterline.store.migrate import upgrade_to_head
from tests.support.waiting import wait_for

MIGRATE_TIMEOUT_S = 60
# A start takes a few seconds on a quiet machine; on one shared at a load of 25-30 it was seen to
# take more than 60 s (whole modules then errored). Only a broken start waits this long.
START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def meterline(*args: str, env: dict[str, str], timeout: float = MIGRATE_TIMEOUT_S) -> str:
    """Run a `meterline` CLI command; returns stdout, raises with stderr on failure."""
    done = subprocess.run(
        [sys.executable, "-m", "meterline.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"meterline {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


# By default a test server's engine runs as a user's does: the evaluator and webhook delivery in
# processes of their own, forked by a fork server that imports meterline again (about a CPU-second
# of each start). With these settings they run as threads inside the server: the same evaluator and
# delivery code on the same database, for tests that look at what the server answers or delivers,
# not at how its processes are laid out, killed or restarted.
ENGINE_IN_THREADS = {"METERLINE_ENGINE_PROCESS": "false"}

# PostgreSQL has no default key file: servers (and their restarts) share this one, as in production.
POSTGRES_SECRET_KEY = base64.urlsafe_b64encode(b"meterline tests: not a secret!!!").decode()


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "METERLINE_DATABASE_URL": database_url,
            "METERLINE_LOG_LEVEL": "warning",
            # Test receivers listen on 127.0.0.1: allow private webhook destinations.
            "METERLINE_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
            **extra,
        }
    )
    if not database_url.startswith("sqlite"):
        env.setdefault("METERLINE_SECRET_KEY", POSTGRES_SECRET_KEY)
    return env


@dataclass
class RunningServer:
    base_url: str
    token: str
    database_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str]

    def stop(self) -> None:
        stop_process(self.process, 15)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def stop_process(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout_s`."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def start_engine(database_url: str, log_path: Path, **extra_env: str) -> subprocess.Popen[bytes]:
    """`meterline engine` (the evaluator and webhook delivery, no API) on this database."""
    return subprocess.Popen(
        [sys.executable, "-m", "meterline.cli", "engine"],
        env=server_env(database_url, **extra_env),
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
    )


def create_token(database_url: str, name: str = "tests") -> str:
    """An API token on this database, migrated to the head first: what `meterline migrate` and
    `meterline tokens create` do, called in this process (the CLI's own tests run the commands;
    a process for each cost every server start about a CPU-second)."""
    db = Database(database_url)
    try:
        upgrade_to_head(db)
        with db.write() as conn:
            _token_id, token = tokens.create_token(conn, name)
    finally:
        db.dispose()
    return token


def start_server(
    database_url: str,
    workdir: Path,
    *,
    token: str | None = None,
    port: int | None = None,
    python: str = sys.executable,
    **extra_env: str,
) -> RunningServer:
    """`meterline serve` on this database, answering /health, with an API token made for it; its
    engine laid out as a user's is unless `extra_env` says otherwise (`ENGINE_IN_THREADS`).
    `python`: the interpreter whose meterline serves (another build's, for a bench's pairing)."""
    env = server_env(database_url, **extra_env)
    token = token or create_token(database_url)
    port = port or free_port()
    log_path = workdir / f"server-{port}.log"
    process = subprocess.Popen(
        [python, "-m", "meterline.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    base_url = f"http://127.0.0.1:{port}"
    _wait_healthy(base_url, process, log_path)
    return RunningServer(base_url, token, database_url, process, log_path, env)


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"meterline serve exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            # Answering is up: a 503 reports a part down or lagging (a backlog left by a crash).
            return httpx.get(f"{base_url}/health", timeout=5).status_code in (200, 503)
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, bool, START_TIMEOUT_S)
    except AssertionError:
        process.kill()
        raise RuntimeError(f"meterline serve did not become healthy:\n{log_path.read_text()}") from None
