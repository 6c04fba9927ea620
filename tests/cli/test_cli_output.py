"""What the `meterline` command prints, run as a user runs it (a process whose stdout is a pipe).

Ids are never cut, however narrow the output, so an id read from a list can be pasted into the
next command; every list command speaks JSON; long work shows progress.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import create_engine, text

from meterline.cli import app
from meterline.delivery.secrets import require_box
from meterline.domain.timeutil import now_us
from meterline.runtime.webhooks import secret_box
from meterline.settings import Settings
from meterline.store import webhooks
from meterline.store.db import Database, normalize_url
from meterline.store.migrate import upgrade_to_head
from tests.delivery.helpers import notify, register

LONG_URL = "https://billing-webhooks.app.example.com/integrations/meterline/notifications/receive"


def run(*args: str, database_url: str, columns: int | None = 40) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_") and k != "COLUMNS"}
    env.update({"METERLINE_DATABASE_URL": database_url, "METERLINE_LOG_LEVEL": "warning"})
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "meterline.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


def ok(*args: str, database_url: str, columns: int | None = 40) -> subprocess.CompletedProcess[str]:
    done = run(*args, database_url=database_url, columns=columns)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'meterline.db'}"


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    upgrade_to_head(database)
    yield database
    database.dispose()


def _rows_with(output: str, value: str) -> list[str]:
    return [line for line in output.splitlines() if value in line]


@pytest.mark.parametrize("columns", [40, None], ids=["COLUMNS=40", "80 columns, not a terminal"])
def test_an_id_read_from_a_table_can_be_pasted_into_the_next_command(
    database_url: str, columns: int | None
) -> None:
    token_id = ok("tokens", "create", "a-rather-long-token-name", database_url=database_url).stderr.split()[3]
    endpoint_id = ok("webhooks", "add", LONG_URL, database_url=database_url).stdout.split()[0]

    tokens_table = ok("tokens", "list", database_url=database_url, columns=columns).stdout
    endpoints_table = ok("webhooks", "list", database_url=database_url, columns=columns).stdout
    assert len(_rows_with(tokens_table, token_id)) == 1
    [row] = _rows_with(endpoints_table, endpoint_id)
    assert LONG_URL in row

    pasted = row.split()[1]  # "│ <id> │ <url> │ ...": what a user selects in the id column
    rotated = run("webhooks", "rotate-secret", pasted, database_url=database_url)
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.strip().startswith("whsec_")


def test_every_list_command_prints_json(database_url: str, db: Database) -> None:
    token_id = ok("tokens", "create", "ci", database_url=database_url).stderr.split()[3]
    endpoint_id = ok("webhooks", "add", LONG_URL, database_url=database_url).stdout.split()[0]
    notification_id = notify(db)
    with db.write() as conn:
        webhooks.fan_out(conn, now_us(), limit=100)

    [token] = json.loads(ok("tokens", "list", "--json", database_url=database_url).stdout)
    assert token["id"] == token_id and token["name"] == "ci" and token["revoked_at"] is None
    [endpoint] = json.loads(ok("webhooks", "list", "--json", database_url=database_url).stdout)
    assert endpoint["id"] == endpoint_id and endpoint["url"] == LONG_URL and "secret" not in endpoint
    [delivery] = json.loads(ok("webhooks", "deliveries", "--json", database_url=database_url).stdout)
    assert delivery["notification_id"] == notification_id and delivery["endpoint_id"] == endpoint_id
    assert delivery["state"] == "pending" and delivery["attempts"] == []


def _commands(group: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf command of a (typer or click) command group, with its full name."""
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def test_no_list_command_lacks_json() -> None:
    """A list command added later without --json fails here."""
    root = typer.main.get_command(app)
    listing = {
        name: command for name, command in _commands(root) if name.endswith(" list") or "deliveries" in name
    }
    assert {"tokens list", "webhooks list", "webhooks deliveries"} <= set(listing)
    for name, command in listing.items():
        assert any("--json" in p.opts for p in command.params), f"`meterline {name}` has no --json"


def test_replaying_every_failed_delivery_shows_progress(database_url: str, db: Database) -> None:
    """A receiver answered 410 Gone by mistake: it is enabled again and its failed deliveries sent."""
    box = require_box(secret_box(Settings(database_url=database_url)))
    fixed = register(db, box, "https://fixed.example.com/hooks").endpoint.id
    removed = register(db, box, "https://removed.example.com/hooks").endpoint.id
    sent = [notify(db) for _ in range(150)]  # more than one transaction's chunk
    with db.write() as conn:
        webhooks.fan_out(conn, now_us(), limit=1000)
        webhooks.disable_endpoint(conn, fixed, "410 Gone", now_us())
        webhooks.remove_endpoint(conn, removed, now_us())
        webhooks.enable_endpoint(conn, fixed, now_us())

    replayed = ok("webhooks", "replay", "--failed", database_url=database_url)
    assert "replaying" in replayed.stderr and "150/150" in replayed.stderr
    assert "queued 150 failed deliveries again (150 to disabled or removed endpoints left failed)" in (
        " ".join(replayed.stderr.split())
    )
    with db.read() as conn:
        pending = webhooks.list_deliveries(conn, state=webhooks.PENDING, limit=1000)
        failed = webhooks.list_deliveries(conn, state=webhooks.FAILED, limit=1000)
    assert sorted(d.notification_id for d in pending) == sorted(sent)
    assert {d.endpoint_id for d in pending} == {fixed}
    assert {d.endpoint_id for d in failed} == {removed}


def test_replay_needs_a_notification_or_failed(database_url: str) -> None:
    refused = run("webhooks", "replay", database_url=database_url)
    assert refused.returncode == 2 and "NOTIFICATION_ID, or give --failed" in refused.stderr


def test_migrate_shows_progress_and_creates_a_missing_postgres_database(
    postgres_url: str,
) -> None:
    url = postgres_url.rsplit("/", 1)[0] + f"/meterline_created_{uuid.uuid4().hex[:8]}"
    try:
        done = ok("migrate", database_url=url)
        assert f"created the database {url.rsplit('/', 1)[1]}" in done.stderr
        assert "migrating" in done.stderr and "schema is at revision" in done.stderr
        again = ok("migrate", database_url=url)
        assert "created the database" not in again.stderr
    finally:
        admin = create_engine(normalize_url(postgres_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
        admin.dispose()
