"""The engine's parts on a real, migrated database of each test's own, on each backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meterline.store.db import Database
from meterline.store.migrate import upgrade_to_head


@pytest.fixture
def db(own_database_url: str) -> Iterator[Database]:
    database = Database(own_database_url)
    upgrade_to_head(database)
    try:
        yield database
    finally:
        database.dispose()
