"""The evaluator's batch look-ups (`among`, `keys_among`) find exactly what an IN list finds.

On SQLite they send the values as one JSON parameter unpacked by `json_each`; whatever the values
hold (quotes, backslashes, non-ASCII, numbers), the rows found must be those whose key is among
them, on SQLite and on PostgreSQL. A temporary table keeps the rows away from other tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import BigInteger, Column, Connection, MetaData, String, Table, insert, select

from meterline.store.sql import among, keys_among
from tests.support.databases import connection_with_tables

metadata = MetaData()
probe = Table(
    "batch_lookup_probe",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("bucket_us", BigInteger, primary_key=True),
    prefixes=["TEMPORARY"],
)

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
buckets = st.integers(min_value=-(2**62), max_value=2**62)


@pytest.fixture(scope="module")
def conn(database_url: str) -> Iterator[Connection]:
    with connection_with_tables(database_url, metadata) as connection:
        yield connection


def _stored(conn: Connection, rows: set[tuple[str, int]]) -> None:
    conn.execute(probe.delete())
    if rows:
        conn.execute(insert(probe), [{"name": n, "bucket_us": b} for n, b in rows])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stored=st.sets(st.tuples(names, buckets), max_size=30), asked=st.lists(names, max_size=30))
def test_among_finds_the_rows_whose_value_is_asked_for(
    conn: Connection, stored: set[tuple[str, int]], asked: list[str]
) -> None:
    _stored(conn, stored)
    found = conn.execute(select(probe.c.name, probe.c.bucket_us).where(among(conn, probe.c.name, asked)))
    assert set(found) == {row for row in stored if row[0] in asked}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    stored=st.sets(st.tuples(names, buckets), max_size=30),
    extra=st.lists(st.tuples(names, buckets), max_size=10),
    data=st.data(),
)
def test_keys_among_finds_the_rows_whose_whole_key_is_asked_for(
    conn: Connection, stored: set[tuple[str, int]], extra: list[tuple[str, int]], data: st.DataObject
) -> None:
    _stored(conn, stored)
    # Some stored keys, some near misses (a stored name with another bucket), some strangers.
    picked = data.draw(st.lists(st.sampled_from(sorted(stored)), max_size=10)) if stored else []
    near = [(name, bucket + 1) for name, bucket in picked]
    asked = [*picked, *near, *extra]
    found = conn.execute(
        select(probe.c.name, probe.c.bucket_us).where(
            keys_among(conn, (probe.c.name, probe.c.bucket_us), asked)
        )
    )
    assert set(found) == stored & set(asked)
