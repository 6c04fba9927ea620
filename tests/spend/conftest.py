"""Fixtures for spend control (meterline's extensions): a real server per backend, the official SDK
for Metronome's routes, and plain httpx for meterline's own."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from metronome import Metronome

from tests.spend.helpers import Extensions
from tests.support.server import RunningServer


@pytest.fixture
def client(server: RunningServer) -> Metronome:
    return Metronome(bearer_token=server.token, base_url=server.base_url, max_retries=0)


@pytest.fixture
def api(server: RunningServer) -> Iterator[Extensions]:
    with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=10) as http:
        yield Extensions(http)
