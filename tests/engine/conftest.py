"""The engine's parts on a real, migrated database of each test's own, on each backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meterline.store.db import Database
from tests.support.databases import migrated


@pytest.fixture
def db(own_database_url: str) -> Iterator[Database]:
    with migrated(own_database_url) as database:
        yield database
