"""Fixtures for dispatcher tests: an own database per backend, a settable clock, started dispatchers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import delete

from meterline.delivery.dispatcher import Dispatcher
from meterline.delivery.secrets import SecretBox
from meterline.store.db import Database
from meterline.store.tables import webhook_attempts, webhook_deliveries, webhook_endpoints
from tests.delivery.helpers import Clock
from tests.support.databases import migrated


@pytest.fixture(scope="module")
def db(module_database_url: str) -> Iterator[Database]:
    """A database no server uses: only the dispatchers a test starts send from it."""
    with migrated(module_database_url) as database:
        yield database


@pytest.fixture(autouse=True)
def _forget_endpoints(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts without endpoints or deliveries (the outbox itself is append-only)."""
    yield
    if "db" in request.fixturenames:
        database: Database = request.getfixturevalue("db")
        with database.write() as conn:
            for table in (webhook_attempts, webhook_deliveries, webhook_endpoints):
                conn.execute(delete(table))


@pytest.fixture
def box() -> SecretBox:
    return SecretBox([Fernet.generate_key().decode()])


@pytest.fixture
def clock() -> Clock:
    return Clock()


StartDispatcher = Callable[..., Dispatcher]


@pytest.fixture
def start_dispatcher(db: Database, box: SecretBox, clock: Clock) -> Iterator[StartDispatcher]:
    """Start a dispatcher on the test clock (no jitter, fast polling); every one is stopped after."""
    started: list[Dispatcher] = []

    def start(**overrides: Any) -> Dispatcher:
        options: dict[str, Any] = {
            "timeout_s": 2.0,
            "poll_interval_s": 0.02,
            "concurrency_per_endpoint": 4,
            "clock": clock,
            "jitter": lambda: 0.5,
            "allow_private_networks": True,  # the test receivers listen on 127.0.0.1
        }
        options.update(overrides)
        dispatcher = Dispatcher(db, box, **options)
        dispatcher.start()
        started.append(dispatcher)
        return dispatcher

    yield start
    for dispatcher in started:
        dispatcher.stop()
