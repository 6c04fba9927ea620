"""Webhooks work with no set-up on SQLite, and never silently not at all on PostgreSQL.

SQLite: the key that encrypts endpoint secrets is generated beside the database on first use
(0600, said in the log). PostgreSQL has no such place, so `serve` refuses to start without a key,
saying how to make one, unless webhooks are turned off explicitly.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from meterline.delivery.secrets import load_secret_box
from meterline.runtime.webhooks import webhook_delivery_on
from meterline.settings import Settings
from tests.support.server import ENGINE_IN_THREADS, free_port, meterline, start_server


def _log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}
    env.update(settings)
    return env


def test_a_first_serve_on_sqlite_makes_the_key_file_and_says_so(tmp_path: Path) -> None:
    database = tmp_path / "meterline.db"
    # What is under test is the key file and what the server logs of it: the engine's layout is not.
    running = start_server(f"sqlite:///{database}", tmp_path, **ENGINE_IN_THREADS, METERLINE_LOG_LEVEL="info")
    try:
        created = httpx.post(
            f"{running.base_url}/v1/webhooks/endpoints/create",
            headers=running.headers(),
            json={"url": "https://app.example.com/hooks"},
        )
        assert created.status_code == 200, created.text
    finally:
        running.stop()
    key_file = tmp_path / "meterline.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    said = [line for line in _log_lines(running.log_path) if line["event"] == "webhook_key_file_created"]
    assert [(s["path"], s["mode"]) for s in said] == [(str(key_file), "0600")]
    started = next(line for line in _log_lines(running.log_path) if line["event"] == "server_started")
    assert started["webhooks"] is True


def test_the_first_command_to_open_a_sqlite_database_makes_the_key_and_logs_it(tmp_path: Path) -> None:
    env = _env(METERLINE_DATABASE_URL=f"sqlite:///{tmp_path / 'meterline.db'}")
    first = subprocess.run(
        [sys.executable, "-m", "meterline.cli", "webhooks", "add", "https://app.example.com/hooks"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    said = [json.loads(line) for line in first.stderr.splitlines() if "webhook_key_file_created" in line]
    assert [(s["path"], s["mode"]) for s in said] == [(str(tmp_path / "meterline.key"), "0600")]
    again = meterline("webhooks", "list", env=env)
    assert "app.example.com" in again


@pytest.fixture
def postgres_url(postgres_url: str) -> str:
    """The shared fixture's fresh PostgreSQL database, migrated by the CLI."""
    meterline("migrate", env=_env(METERLINE_DATABASE_URL=postgres_url))
    return postgres_url


def _serve(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "meterline.cli", "serve", "--port", str(free_port())],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_postgresql_without_a_key_refuses_to_start_and_says_how_to_make_one(
    postgres_url: str, tmp_path: Path
) -> None:
    refused = _serve(_env(METERLINE_DATABASE_URL=postgres_url), tmp_path)
    _out, err = refused.communicate(timeout=60)
    assert refused.returncode == 1
    assert "METERLINE_SECRET_KEY" in err and "`meterline secret-key`" in err
    assert "METERLINE_WEBHOOKS_ENABLED=false" in err
    assert not (tmp_path / "meterline.key").exists()


@pytest.mark.slow
def test_postgresql_runs_with_a_made_key_or_with_webhooks_off(postgres_url: str, tmp_path: Path) -> None:
    key = meterline("secret-key", env=_env()).strip()
    # The key, and which servers start without one, are under test; the engine's layout is not.
    with_key = start_server(postgres_url, tmp_path, **ENGINE_IN_THREADS, METERLINE_SECRET_KEY=key)
    try:
        created = httpx.post(
            f"{with_key.base_url}/v1/webhooks/endpoints/create",
            headers=with_key.headers(),
            json={"url": "https://app.example.com/hooks"},
        )
        assert created.status_code == 200, created.text
        # The CLI, given the same key, rotates the secret the server stored.
        cli_env = _env(METERLINE_DATABASE_URL=postgres_url, METERLINE_SECRET_KEY=key)
        rotated = meterline("webhooks", "rotate-secret", created.json()["data"]["id"], env=cli_env)
        assert rotated.strip().startswith("whsec_")
    finally:
        with_key.stop()
    off = start_server(
        postgres_url,
        tmp_path,
        **ENGINE_IN_THREADS,
        METERLINE_WEBHOOKS_ENABLED="false",
        METERLINE_SECRET_KEY="",
    )
    off.stop()


def test_delivery_is_on_only_with_a_key_and_not_turned_off(tmp_path: Path) -> None:
    sqlite = Settings(database_url=f"sqlite:///{tmp_path / 'meterline.db'}")
    box = load_secret_box(None, sqlite.webhook_key_file())
    assert webhook_delivery_on(sqlite, box)
    assert not webhook_delivery_on(sqlite.model_copy(update={"webhooks_enabled": False}), box)
    assert not webhook_delivery_on(Settings(database_url="postgresql://u@h/db"), None)
