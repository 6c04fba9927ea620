"""SSRF: webhooks reach only public addresses unless the operator allows private ones, checked at
registration and again at send time after DNS resolution; a receiver's answer body is kept only
where private destinations are allowed, its status and headers always."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from meterline.delivery.destinations import PRIVATE_RULE, is_public, refusal
from meterline.delivery.secrets import SecretBox
from meterline.store.db import Database
from tests.delivery.conftest import StartDispatcher
from tests.delivery.helpers import attempts, notify, register, settle, wait_for_attempts
from tests.delivery.receiver import Receiver, Reply
from tests.support.server import ENGINE_IN_THREADS, RunningServer, start_server

PRIVATE = [
    "127.0.0.1",
    "127.8.9.10",
    "::1",
    "169.254.169.254",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
    "0.0.0.0",
    "::",
    "224.0.0.1",
    "ff02::1",
    "fe80::1",
    "fc00::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888"]


@pytest.mark.parametrize("address", PRIVATE)
def test_private_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))
    host = f"[{address}]" if ":" in address else address
    assert refusal(f"https://{host}:8443/hooks", allow_private=False) == PRIVATE_RULE
    assert refusal(f"https://{host}:8443/hooks", allow_private=True) is None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))
    host = f"[{address}]" if ":" in address else address
    assert refusal(f"https://{host}/hooks", allow_private=False) is None


def test_userinfo_is_refused_even_where_private_networks_are_allowed() -> None:
    for url in ("https://user:pw@example.com/hooks", "https://token@example.com/"):
        assert refusal(url, allow_private=False) == "must not contain a user name or password"
        assert refusal(url, allow_private=True) == "must not contain a user name or password"


# -- registration, through a real server that does not allow private destinations ----------------------
@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """What registration refuses is under test, not the engine's processes: they run as threads."""
    workdir: Path = tmp_path_factory.mktemp("ssrf")
    running = start_server(
        f"sqlite:///{workdir / 'meterline.db'}",
        workdir,
        **ENGINE_IN_THREADS,
        METERLINE_WEBHOOK_ALLOW_PRIVATE_NETWORKS="false",
        METERLINE_SECRET_KEY=Fernet.generate_key().decode(),
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://127.0.0.1:9/hooks", PRIVATE_RULE),
        ("http://[::1]:9/hooks", PRIVATE_RULE),
        ("http://169.254.169.254/latest/meta-data/", PRIVATE_RULE),
        ("http://10.0.0.7/hooks", PRIVATE_RULE),
        ("http://[::ffff:127.0.0.1]/hooks", PRIVATE_RULE),
        ("http://localhost:8080/hooks", PRIVATE_RULE),
        ("http://0.0.0.0/hooks", PRIVATE_RULE),
        ("https://me:secret@example.com/hooks", "must not contain a user name or password"),
    ],
)
def test_registration_refuses_private_destinations(strict_server: RunningServer, url: str, rule: str) -> None:
    response = httpx.post(
        f"{strict_server.base_url}/v1/webhooks/endpoints/create",
        json={"url": url},
        headers=strict_server.headers(),
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert response.json() == {"message": f"url: {rule}"}


def test_registration_accepts_a_public_destination(strict_server: RunningServer) -> None:
    response = httpx.post(
        f"{strict_server.base_url}/v1/webhooks/endpoints/create",
        json={"url": "https://8.8.8.8/hooks"},
        headers=strict_server.headers(),
        timeout=30,
    )
    assert response.status_code == 200, response.text


# -- send time: what registration let through (a name that now resolves inside) is refused ----------
@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_send_time_refuses_what_resolves_to_a_private_address(
    db: Database, box: SecretBox, start_dispatcher: StartDispatcher, host: str
) -> None:
    receiver = Receiver().up()
    try:
        # Stored directly, as an endpoint whose name resolved to a public address at registration
        # and to loopback now (DNS rebinding) would be.
        register(db, box, f"http://{host}:{receiver.port}/hooks")
        start_dispatcher(allow_private_networks=False)
        notification_id = notify(db)
        delivery = wait_for_attempts(db, notification_id, 1)
        settle()
        assert receiver.requests == []
        attempt = attempts(db, delivery.id)[0]
        assert attempt.status_code is None and attempt.response_body is None
        assert attempt.error is not None and "METERLINE_WEBHOOK_ALLOW_PRIVATE_NETWORKS" in attempt.error
    finally:
        receiver.down()


def test_where_private_destinations_are_allowed_answers_are_kept(
    db: Database, box: SecretBox, start_dispatcher: StartDispatcher
) -> None:
    receiver = Receiver(lambda _r, _i: Reply(200, b"internal answer", {"X-Trace": "abc"})).up()
    try:
        register(db, box, receiver.url)
        start_dispatcher(allow_private_networks=True)
        delivery = wait_for_attempts(db, notify(db), 1)
        attempt = attempts(db, delivery.id)[0]
        assert attempt.status_code == 200 and attempt.response_body == "internal answer"
        assert attempt.response_headers is not None and '"x-trace": "abc"' in attempt.response_headers
    finally:
        receiver.down()
