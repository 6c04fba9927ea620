"""Fixtures for the Metronome-SDK compatibility suite: an SDK client bound to the shared server."""

from __future__ import annotations

import pytest
from metronome import Metronome

from tests.support.server import RunningServer


@pytest.fixture
def client(server: RunningServer) -> Metronome:
    return Metronome(bearer_token=server.token, base_url=server.base_url, max_retries=0)
