"""Waking an engine process when events are committed by an API server in another process.

An API server wakes its own engine processes through a pipe. Engines started on their own
(`meterline engine`, on any machine) learn of new events from PostgreSQL: every append commits a
`NOTIFY` on `LOG_CHANNEL` (store/event_log.py), and this thread LISTENs on its own connection and
wakes the evaluator. A lost connection is reopened; meanwhile the evaluator's poll interval still
bounds the wait. On SQLite, whose engine runs beside the one server that writes the log, there is
nothing to listen to.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy.engine import make_url

from meterline.logging import get_logger
from meterline.store.db import Database
from meterline.store.event_log import LOG_CHANNEL

RECONNECT_DELAY_S = 1.0
log = get_logger("meterline.engine")


class LogListener:
    def __init__(self, db: Database, wake: Callable[[], None]):
        self._url = _libpq_url(db.url) if not db.is_sqlite else None
        self._wake = wake
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._url is None:
            return
        self._thread = threading.Thread(target=self._listen, name="meterline-log-listener", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _listen(self) -> None:
        import psycopg  # here, not at the top: only an engine on PostgreSQL listens

        assert self._url is not None
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {LOG_CHANNEL}")
                    while not self._stop.is_set():
                        for _notice in conn.notifies(timeout=1.0):
                            self._wake()
            except psycopg.Error as error:
                log.warning("log_listener_reconnecting", error=str(error)[:200])
                self._stop.wait(RECONNECT_DELAY_S)


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
