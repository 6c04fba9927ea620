"""`upsert` keeps the last value written for each key, every value read back exactly as written.

On SQLite it runs as the driver's own executemany, values converted by the columns' bind
processors (exact decimals stored as text); on PostgreSQL through SQLAlchemy. Either way, rows
written in several rounds read back as the last round wrote them. A temporary table keeps the
rows away from other tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import BigInteger, Column, Connection, MetaData, String, Table, select

from meterline.store.sql import upsert
from meterline.store.types import ExactDecimal
from tests.support.databases import connection_with_tables

metadata = MetaData()
probe = Table(
    "upsert_probe",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("bucket_us", BigInteger, primary_key=True),
    Column("amount", ExactDecimal(), nullable=True),
    Column("note", String(64), nullable=True),
    prefixes=["TEMPORARY"],
)

keys = st.tuples(st.sampled_from(["a", "b", "c'", 'd"', "é"]), st.integers(min_value=-3, max_value=3))
amounts = st.none() | st.decimals(
    allow_nan=False, allow_infinity=False, places=6, min_value=-(10**12), max_value=10**12
)
# Text as the API accepts it: valid UTF-8; no NUL, which PostgreSQL's text cannot hold.
notes = st.none() | st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)
rounds = st.lists(
    st.dictionaries(keys, st.tuples(amounts, notes), min_size=1, max_size=8), min_size=1, max_size=4
)


@pytest.fixture(scope="module")
def conn(database_url: str) -> Iterator[Connection]:
    with connection_with_tables(database_url, metadata) as connection:
        yield connection


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(written=rounds)
def test_each_key_reads_back_as_its_last_upsert_wrote_it(
    conn: Connection, written: list[dict[tuple[str, int], tuple[Decimal | None, str | None]]]
) -> None:
    conn.execute(probe.delete())
    expected: dict[tuple[str, int], tuple[Decimal | None, str | None]] = {}
    for round_ in written:
        rows = [
            {"name": name, "bucket_us": bucket, "amount": amount, "note": note}
            for (name, bucket), (amount, note) in round_.items()
        ]
        upsert(conn, probe, rows, ["name", "bucket_us"])
        expected.update(round_)
    found = {(r.name, r.bucket_us): (r.amount, r.note) for r in conn.execute(select(probe))}
    assert found == expected
