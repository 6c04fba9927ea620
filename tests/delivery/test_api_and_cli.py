"""Endpoints and the delivery log through a real `meterline serve` (HTTP API) and the CLI.

The server's own dispatcher delivers: outbox rows are written into its database as alert
evaluation writes them, and a real receiver on 127.0.0.1 checks what arrives.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url
from standardwebhooks import Webhook
from typer.testing import CliRunner

from meterline.cli import app as cli
from meterline.settings import get_settings
from meterline.store.db import Database
from tests.delivery.helpers import notify
from tests.delivery.receiver import Receiver
from tests.support.server import ENGINE_IN_THREADS, RunningServer, start_server
from tests.support.waiting import wait_for

SPEND = "alerts.spend_threshold_reached"
RESOLVED = "alerts.spend_threshold_reached_resolved"


@pytest.fixture(scope="module")
def served(
    backend: str, module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A server of its own (no other test's notifications), polling its outbox every 50 ms. Its
    engine runs as threads: these tests look at the endpoints, deliveries, logs and replays, which
    are the same code either way, not at the engine's processes."""
    workdir = tmp_path_factory.mktemp("webhook-server")
    options = {"METERLINE_WEBHOOK_POLL_INTERVAL_S": "0.05", "METERLINE_LOG_LEVEL": "info"}
    if backend == "postgres":
        # Several processes share a PostgreSQL database, so there is no default key file: name a key.
        options["METERLINE_SECRET_KEY"] = Fernet.generate_key().decode()
    running = start_server(module_database_url, workdir, **ENGINE_IN_THREADS, **options)
    yield running
    running.stop()


@pytest.fixture
def api(served: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.base_url, headers=served.headers(), timeout=10) as client:
        yield client
    for endpoint in client_list(served):
        httpx.post(
            f"{served.base_url}/v1/webhooks/endpoints/remove",
            headers=served.headers(),
            json={"id": endpoint["id"]},
        )


def client_list(served: RunningServer) -> list[dict[str, Any]]:
    answer = httpx.post(f"{served.base_url}/v1/webhooks/endpoints/list", headers=served.headers(), json={})
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


def test_endpoints_are_created_listed_rotated_and_removed(api: httpx.Client) -> None:
    generated = api.post("/v1/webhooks/endpoints/create", json={"url": "http://127.0.0.1:9/a"}).json()["data"]
    assert generated["secret"].startswith("whsec_") and generated["types"] is None and generated["enabled"]
    given_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    chosen = api.post(
        "/v1/webhooks/endpoints/create",
        json={"url": "https://example.com/b", "secret": given_secret, "types": [SPEND, RESOLVED]},
    ).json()["data"]
    assert (chosen["secret"], chosen["types"]) == (given_secret, [SPEND, RESOLVED])

    listed = api.post("/v1/webhooks/endpoints/list").json()
    assert [e["id"] for e in listed["data"]] == [generated["id"], chosen["id"]]
    assert all("secret" not in e for e in listed["data"])
    first_page = api.post("/v1/webhooks/endpoints/list", json={"limit": 1}).json()
    second_page = api.post(
        "/v1/webhooks/endpoints/list", json={"limit": 1, "next_page": first_page["next_page"]}
    )
    assert second_page.json()["data"][0]["id"] == chosen["id"]

    rotated = api.post("/v1/webhooks/endpoints/rotateSecret", json={"id": chosen["id"]}).json()["data"]
    assert rotated["secret"] not in (given_secret, generated["secret"])
    assert rotated["previous_secret_expires_at"] is not None

    assert api.post("/v1/webhooks/endpoints/remove", json={"id": chosen["id"]}).json() == {
        "data": {"id": chosen["id"]}
    }
    assert [e["id"] for e in api.post("/v1/webhooks/endpoints/list").json()["data"]] == [generated["id"]]


@pytest.mark.parametrize(
    ("path", "body", "status", "says"),
    [
        ("/v1/webhooks/endpoints/create", {"url": "ftp://example.com"}, 400, "url: must be an absolute http"),
        (
            "/v1/webhooks/endpoints/create",
            {"url": "http://x.com", "secret": "hunter2"},
            400,
            "secret: must be whsec_",
        ),
        (
            "/v1/webhooks/endpoints/create",
            {"url": "http://x.com", "types": ["alerts.nope"]},
            400,
            "types[0]: unknown",
        ),
        ("/v1/webhooks/endpoints/create", {"url": "http://x.com", "types": []}, 400, "types: must list"),
        ("/v1/webhooks/endpoints/create", {"url": "http://x.com", "colour": 1}, 400, "colour: unknown field"),
        ("/v1/webhooks/endpoints/create", {"url": "http://x.com/\u0000"}, 400, "NUL"),
        ("/v1/webhooks/endpoints/remove", {"id": "nope"}, 404, "no webhook endpoint"),
        ("/v1/webhooks/endpoints/rotateSecret", {"id": "nope"}, 404, "no webhook endpoint"),
        ("/v1/webhooks/endpoints/list", {"next_page": "bm9wZQ"}, 400, "next_page"),
        ("/v1/webhooks/deliveries/list", {"next_page": "WzEsMl0"}, 400, "next_page"),
        ("/v1/webhooks/deliveries/list", {"state": "lost"}, 400, "state"),
        ("/v1/webhooks/deliveries/replay", {"notification_id": "nope"}, 404, "no notification"),
    ],
)
def test_bad_requests_get_a_4xx_that_says_why(
    api: httpx.Client, path: str, body: dict[str, Any], status: int, says: str
) -> None:
    answer = api.post(path, json=body)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["message"]
    assert "hunter2" not in answer.text


def test_the_server_delivers_logs_and_replays(served: RunningServer, api: httpx.Client) -> None:
    receiver = Receiver().up()
    created = api.post("/v1/webhooks/endpoints/create", json={"url": receiver.url}).json()["data"]
    db = Database(served.database_url)
    try:
        notification_id = notify(db, current_spend=5000)
    finally:
        db.dispose()

    [request] = receiver.wait_for_requests(1)
    assert Webhook(created["secret"]).verify(request.body, request.headers)["id"] == notification_id
    logged = wait_for(
        lambda: api.post("/v1/webhooks/deliveries/list", json={"notification_id": notification_id}).json()[
            "data"
        ],
        lambda got: len(got) == 1 and got[0]["state"] == "succeeded",
    )[0]
    assert logged["endpoint_id"] == created["id"] and logged["notification_type"] == SPEND
    [attempt] = logged["attempts"]
    assert (attempt["status_code"], attempt["response_body"], attempt["error"]) == (200, "ok", None)

    queued = api.post("/v1/webhooks/deliveries/replay", json={"notification_id": notification_id}).json()[
        "data"
    ]
    assert queued == [{"delivery_id": logged["id"], "endpoint_id": created["id"]}]
    assert receiver.wait_for_requests(2)[1].webhook_id == notification_id
    failed = api.post("/v1/webhooks/deliveries/list", json={"state": "failed"}).json()["data"]
    assert notification_id not in [d["notification_id"] for d in failed]
    receiver.down()

    log = served.log_path.read_text()
    assert "webhook_attempt" in log and notification_id in log
    assert created["secret"] not in log


def test_the_key_file_is_beside_a_sqlite_database_and_never_made_for_postgresql(
    served: RunningServer,
) -> None:
    url = make_url(served.database_url)
    if url.get_backend_name() != "sqlite":
        assert not (served.log_path.parent / "meterline.key").exists()  # several servers share a named key
        return
    key_file = Path(str(url.database)).parent / "meterline.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    Fernet(key_file.read_text().strip().encode())  # a usable key


@pytest.fixture
def cli_env(served: RunningServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """The CLI in this process, configured as the server is (same database, same key)."""
    for name, value in served.env.items():
        if name.startswith("METERLINE_"):
            monkeypatch.setenv(name, value)
    for name in os.environ:
        if name.startswith("METERLINE_") and name not in served.env:
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "400")  # rich tables wide enough to keep every id whole
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()
    structlog.reset_defaults()  # the CLI pointed log lines at the runner's (now closed) stderr


def test_the_cli_manages_endpoints_and_replays(
    served: RunningServer, api: httpx.Client, cli_env: CliRunner
) -> None:
    receiver = Receiver().up()
    added = cli_env.invoke(cli, ["webhooks", "add", receiver.url, "--types", f"{SPEND},{RESOLVED}"])
    assert added.exit_code == 0, added.output
    endpoint_id, secret = added.stdout.split()
    assert secret.startswith("whsec_")

    listed = cli_env.invoke(cli, ["webhooks", "list"])
    assert endpoint_id in listed.stdout and secret not in listed.stdout

    db = Database(served.database_url)
    try:
        notification_id = notify(db, RESOLVED)
    finally:
        db.dispose()
    assert receiver.wait_for_requests(1)[0].webhook_id == notification_id
    Webhook(secret).verify(receiver.requests[0].body, receiver.requests[0].headers)
    wait_for(
        lambda: cli_env.invoke(cli, ["webhooks", "deliveries", "--endpoint", endpoint_id]).stdout,
        lambda table: "succeeded" in table,
    )
    shown = cli_env.invoke(cli, ["webhooks", "deliveries", "--notification", notification_id]).stdout
    assert "attempts to" in shown and "200" in shown

    replayed = cli_env.invoke(cli, ["webhooks", "replay", notification_id, "--endpoint", endpoint_id])
    assert replayed.exit_code == 0, replayed.output
    assert receiver.wait_for_requests(2)[1].webhook_id == notification_id

    rotated = cli_env.invoke(cli, ["webhooks", "rotate-secret", endpoint_id])
    assert rotated.exit_code == 0 and rotated.stdout.strip().startswith("whsec_")
    assert cli_env.invoke(cli, ["webhooks", "deliveries", "--failed"]).exit_code == 0
    assert cli_env.invoke(cli, ["webhooks", "remove", endpoint_id]).exit_code == 0
    missing = cli_env.invoke(cli, ["webhooks", "remove", endpoint_id])
    assert missing.exit_code == 1 and "no webhook endpoint" in missing.stderr
    refused = cli_env.invoke(cli, ["webhooks", "add", "http://x.com", "--secret", "hunter2"])
    assert refused.exit_code == 1 and "hunter2" not in refused.output
    receiver.down()
