"""meterline in-process: the real app (routes, ingest writer) without its background evaluator, and
an `Evaluator` on the same database driven by the test at instants it chooses.

For tests about time and ordering: nothing is evaluated until the test calls `run(at_us)`, and
then at exactly that instant, so every state, measure and notification timestamp is exact.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from metronome import Metronome
from pydantic import SecretStr

from meterline.domain.timeutil import now_us
from meterline.engine.evaluator import Evaluator
from meterline.runtime.server import create_app
from meterline.settings import Settings
from meterline.store import tokens
from meterline.store.db import Database
from tests.support.server import POSTGRES_SECRET_KEY

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette would rather the test client used httpx2
    from fastapi.testclient import TestClient


@dataclass
class InProcess:
    url: str
    db: Database
    client: Metronome
    now: int = field(default_factory=now_us)
    _evaluator: Evaluator | None = None

    def evaluator(self) -> Evaluator:
        """The evaluator, created on first use (its first batch schedules the clock's sweep)."""
        if self._evaluator is None:
            self._evaluator = Evaluator(
                self.db, batch_events=1000, poll_interval_s=0.1, clock=lambda: self.now
            )
        return self._evaluator

    def restart(self) -> None:
        """The engine stopped and started again: a new evaluator, holding nothing in memory."""
        if self._evaluator is not None:
            self._evaluator.leave()
            self._evaluator = None

    def run(self, at_us: int) -> None:
        """Evaluate at `at_us`: every event, billing request and sweep pending, to the end."""
        self.now = at_us
        evaluator = self.evaluator()
        while True:
            result = evaluator.run_once()
            if not result.events and not result.more_work:
                return


@contextmanager
def in_process(url: str) -> Iterator[InProcess]:
    """The app on `url`, served in this process to an SDK client. A PostgreSQL database must be
    migrated already (as `fresh_database` makes them); SQLite is migrated by the app as it opens,
    so the migrations are not checked twice (a few hundredths of a CPU-second each test)."""
    db = Database(url, pool_size=2)
    # PostgreSQL has no default key file: name the key test servers share.
    key = None if url.startswith("sqlite") else SecretStr(POSTGRES_SECRET_KEY)
    app = create_app(
        Settings(
            database_url=url,
            evaluator_enabled=False,
            engine_process=False,
            log_level="warning",
            secret_key=key,
            webhook_allow_private_networks=True,  # test receivers listen on 127.0.0.1
        )
    )
    with db.write() as conn:
        _token_id, token = tokens.create_token(conn, "tests")
    try:
        with TestClient(app) as http:
            client = Metronome(
                bearer_token=token, base_url="http://testserver", http_client=http, max_retries=0
            )
            yield InProcess(url, db, client)
    finally:
        db.dispose()
