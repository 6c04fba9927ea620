"""A write transaction held across a request (store/db.py `held_write`): opened at the first read
or write inside `joined()` (running its first step there), joined by every later one, a write
block that raises undoes only its own writes, nothing is visible elsewhere before the commit, and
what waits for the commit runs after it, never after a rollback."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, delete, select

from meterline.store.db import Database
from meterline.store.tables import server_keys
from tests.support.databases import migrated


@pytest.fixture
def db(own_database_url: str) -> Iterator[Database]:
    with migrated(own_database_url) as database:
        yield database


def names(conn: Connection) -> list[str]:
    return sorted(conn.execute(select(server_keys.c.name)).scalars())


def put(conn: Connection, name: str) -> None:
    conn.execute(server_keys.insert().values(name=name, key=b"k"))


def test_joined_blocks_share_the_held_transaction_and_commit_with_it(db: Database) -> None:
    held = db.held_write()
    with held.joined():
        with db.write() as conn:
            put(conn, "a")
        with db.read() as conn:
            assert names(conn) == ["a"]  # its own write, not yet committed
        with db.single_reads() as driver:  # the held transaction's connection too
            assert driver.execute("SELECT name FROM server_keys").fetchall() == [("a",)]
    assert _names_outside(db) == []
    held.commit()
    assert _names_outside(db) == ["a"]


def test_a_joined_write_block_that_raises_undoes_only_its_own_writes(db: Database) -> None:
    held = db.held_write()
    with held.joined():
        with db.write() as conn:
            put(conn, "kept")
        with pytest.raises(RuntimeError), db.write() as conn:
            put(conn, "undone")
            raise RuntimeError("refused")
    held.commit()
    assert _names_outside(db) == ["kept"]


def test_a_rollback_undoes_everything_and_runs_nothing_that_waited_for_the_commit(db: Database) -> None:
    ran: list[str] = []
    held = db.held_write()
    with held.joined():
        with db.write() as conn:
            put(conn, "gone")
        db.after_commit(lambda: ran.append("woken"))
    held.rollback()
    held.rollback()  # ending twice is harmless
    assert ran == []
    assert _names_outside(db) == []


def test_what_waits_for_the_commit_runs_after_it_and_at_once_outside_a_held_transaction(db: Database) -> None:
    ran: list[list[str]] = []
    db.after_commit(lambda: ran.append(["at once"]))
    held = db.held_write()
    with held.joined():
        with db.write() as conn:
            put(conn, "x")
        db.after_commit(lambda: ran.append(_names_outside(db)))
    assert ran == [["at once"]]
    held.commit()
    assert ran == [["at once"], ["x"]]  # it ran once the write was visible to others
    with db.write() as conn:
        conn.execute(delete(server_keys))


def _names_outside(db: Database) -> list[str]:
    """What another connection sees (a context without the held transaction)."""
    result: list[list[str]] = []

    def read() -> None:
        with db.read() as conn:
            result.append(names(conn))

    thread = threading.Thread(target=read)  # threads do not inherit the joined context
    thread.start()
    thread.join()
    return result[0]


def test_it_opens_at_the_first_read_or_write_running_its_first_step_there(db: Database) -> None:
    steps: list[str] = []

    def first_step(conn: Connection) -> None:
        steps.append("opened")
        put(conn, "first")

    held = db.held_write(on_open=first_step)
    with held.joined():
        assert not held.opened
        db.after_commit(lambda: steps.append("nothing to wait for"))  # nothing written yet
        with db.read() as conn:
            assert names(conn) == ["first"]
        assert held.opened
    held.commit()
    assert steps == ["nothing to wait for", "opened"]
    assert _names_outside(db) == ["first"]


def test_a_transaction_never_read_or_written_in_takes_no_lock(db: Database) -> None:
    held = db.held_write()
    with held.joined():
        pass
    with db.write() as conn:  # would wait forever on SQLite if the held one had taken the lock
        put(conn, "free")
    held.commit()
    assert _names_outside(db) == ["free"]


def test_single_reads_see_what_is_committed_and_leave_no_snapshot_open(db: Database) -> None:
    def single_read() -> list[str]:
        with db.single_reads() as driver:
            return [r[0] for r in driver.execute("SELECT name FROM server_keys").fetchall()]

    with db.write() as conn:
        put(conn, "committed")
    assert single_read() == ["committed"]
    with db.single_reads(log=True) as driver:  # the event log, a file of its own on SQLite
        assert driver.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    with db.write() as conn:
        conn.execute(delete(server_keys))
    assert single_read() == []  # the pooled connection kept no snapshot of before the write
    with pytest.raises(RuntimeError), db.write() as conn:  # and went back to the pool transactional
        put(conn, "undone")
        raise RuntimeError("refused")
    assert single_read() == []
