"""`make serve PORT=... DB=...` serves on that port from that database (the README's set-up)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx

from tests.support.server import free_port
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]


def test_make_serve_takes_port_and_database(tmp_path: Path) -> None:
    port, database = free_port(), tmp_path / "other.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}
    env["PORT"] = "1"  # a PORT in the environment, meant for something else, is not used
    serving = subprocess.Popen(
        # -o: take the installed .venv as it is (the test suite runs in it)
        [
            "make",
            "--no-print-directory",
            "-o",
            ".venv/.installed",
            "serve",
            f"PORT={port}",
            f"DB=sqlite:///{database}",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:

        def answering() -> bool:
            assert serving.poll() is None, serving.communicate()[1]
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(answering, bool, timeout_s=30, interval_s=0.1)  # make serve answers on its PORT
        assert database.exists() and (tmp_path / "meterline.key").exists()
    finally:
        os.killpg(serving.pid, signal.SIGTERM)
        serving.wait(20)
