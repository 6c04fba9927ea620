"""This engine process as a member of the partition group: its id, its leases, when to renew.

The leases are renewed in a short transaction of their own every third of the lease time, so a
member that stops renewing (a process killed, a machine gone) loses its partitions one lease time
later and a live member takes them over within two.

Waiting out a lease is only needed when nobody can know that its holder died. Two cases are
known: a supervisor that reaped an engine process names it to its successor (`predecessor`);
and on SQLite, where one engine serves a database file, the member that takes the engine lock
file beside the database knows that every member registered before it is gone (the kernel frees
a dead process's lock). Either takes the dead member's partitions at once.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Callable

from sqlalchemy import select

from meterline.domain.timeutil import US_PER_SECOND
from meterline.logging import get_logger
from meterline.store import partitions
from meterline.store.db import Database
from meterline.store.partitions import Holding
from meterline.store.tables import engine_members

DEFAULT_LEASE_S = 10.0
log = get_logger("meterline.engine")


class Membership:
    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], int],
        lease_s: float = DEFAULT_LEASE_S,
        member_id: str | None = None,
        predecessor: str | None = None,
    ):
        self.db = db
        self.clock = clock
        self.lease_us = int(lease_s * US_PER_SECOND)
        self.member_id = member_id or process_member_id()
        self.holding = Holding({})
        self._take_from = [predecessor] if predecessor else []
        self._next_refresh_us = 0
        self._engine_lock_fd: int | None = None
        with db.write(customer_state=False) as conn:
            partitions.ensure_partitions(conn)
        if db.is_sqlite:
            self._claim_sqlite_engine_lock()

    def current(self) -> Holding:
        """The partitions held, renewing the leases first when a third of their time has passed."""
        now = self.clock()
        if now >= self._next_refresh_us:
            self.refresh(now)
        return self.holding

    def refresh(self, now: int | None = None) -> Holding:
        now = self.clock() if now is None else now
        with self.db.write(customer_state=False) as conn:
            self.holding = partitions.refresh(
                conn, self.member_id, now, self.lease_us, take_from=self._take_from
            )
        if self._take_from:
            log.info("partitions_taken_over", member=self.member_id, dead=self._take_from)
            self._take_from = []
        self._next_refresh_us = now + self.lease_us // 3
        return self.holding

    def lost(self) -> None:
        """A batch found the holding stale: read it again before the next batch."""
        self._next_refresh_us = 0

    def leave(self) -> None:
        with self.db.write(customer_state=False) as conn:
            partitions.leave(conn, self.member_id)
        self.holding = Holding({})
        if self._engine_lock_fd is not None:
            os.close(self._engine_lock_fd)
            self._engine_lock_fd = None

    def _claim_sqlite_engine_lock(self) -> None:
        path = _engine_lock_path(self.db)
        if path is None:
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # another engine serves this file: share the partitions by lease
            return
        self._engine_lock_fd = fd
        with self.db.read() as conn:
            before = list(conn.execute(select(engine_members.c.member_id)).scalars())
        self._take_from.extend(m for m in before if m != self.member_id)


def process_member_id() -> str:
    """Every evaluator of one process is the same member: they share its partitions, and their
    batches exclude each other by the positions each checks (as two racing batches must)."""
    return member_id_of(os.getpid())


def member_id_of(pid: int | None) -> str:
    """The member an engine process of this machine with this pid is (or was)."""
    return f"{socket.gethostname()[:40]}-{pid}"


def _engine_lock_path(db: Database) -> str | None:
    lock = db.write_lock_path
    return None if lock is None else lock.removesuffix("-writelock") + "-engine.lock"
