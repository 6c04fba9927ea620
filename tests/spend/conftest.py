"""Fixtures for spend control (meterline's extensions): a real server per backend, the official SDK
for Metronome's routes, and plain httpx for meterline's own."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from metronome import Metronome

from tests.spend.helpers import Extensions
from tests.support.server import RunningServer, start_server


@pytest.fixture(scope="module")
def spend_server(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A server of the module's own (no other test's notifications), delivering webhooks fast."""
    running = start_server(
        module_database_url,
        tmp_path_factory.mktemp("spend-server"),
        METERLINE_WEBHOOK_POLL_INTERVAL_S="0.05",
    )
    yield running
    running.stop()


@pytest.fixture
def client(spend_server: RunningServer) -> Metronome:
    return Metronome(bearer_token=spend_server.token, base_url=spend_server.base_url, max_retries=0)


@pytest.fixture
def api(spend_server: RunningServer) -> Iterator[Extensions]:
    with httpx.Client(base_url=spend_server.base_url, headers=spend_server.headers(), timeout=10) as http:
        yield Extensions(http)
