"""Fixtures for the Metronome-SDK compatibility suite: an SDK client bound to the shared server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from metronome import Metronome

from meterline.store.db import Database
from tests.support.server import RunningServer


@pytest.fixture
def client(server: RunningServer) -> Metronome:
    return Metronome(bearer_token=server.token, base_url=server.base_url, max_retries=0)


@pytest.fixture
def db(server: RunningServer) -> Iterator[Database]:
    """The server's own database, to check what the billing engine will read."""
    database = Database(server.database_url, pool_size=1)
    try:
        yield database
    finally:
        database.dispose()
