"""Shared fixtures: every test that touches a database runs on SQLite and on PostgreSQL.

`backend` is the one parametrised fixture; the databases below are made on it, fresh and empty,
for the whole session (the shared `server`), for a module, or for one test. PostgreSQL is the
server METERLINE_TEST_POSTGRES_URL names, else one answering on 127.0.0.1:5432; without either the
PostgreSQL variants are skipped and the run ends with one line saying how many and how to run them
(tests/support/databases.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings
from sqlalchemy.engine import make_url

from tests.support.browser import BROWSER_SKIP_REASON, require_chromium
from tests.support.databases import (
    POSTGRES_ENV,
    fresh_database,
    postgres_server_url,
    postgres_skip_reason,
    require_postgres,
)
from tests.support.inprocess import InProcess, in_process
from tests.support.server import RunningServer, start_server

# No property test is timed: an example's duration says how busy the machine is, not whether a
# rule holds, and a deadline made the suite fail when other work shared the cores.
settings.register_profile("meterline", deadline=None)
settings.load_profile("meterline")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked slow run first: with the rest handed out as workers free up, none of them
    starts last and leaves the other workers idle while it runs alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """PostgreSQL and browser skips, wherever the test is, report the one place that skips them:
    `-ra` then shows each kind as a single line."""
    report: pytest.TestReport = yield
    if report.skipped and isinstance(report.longrepr, tuple):
        for reason, requirement in (
            (postgres_skip_reason(), require_postgres),
            (BROWSER_SKIP_REASON, require_chromium),
        ):
            if reason in report.longrepr[2]:
                code = requirement.__code__
                report.longrepr = (code.co_filename, code.co_firstlineno, report.longrepr[2])
    return report


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres":
        require_postgres()
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The shared server's database, one per backend for the session."""
    with fresh_database(backend, tmp_path_factory.mktemp("session")) as url:
        yield url


@pytest.fixture(scope="module")
def module_database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of the module's own: no server but those its tests start uses it."""
    with fresh_database(backend, tmp_path_factory.mktemp("module")) as url:
        yield url


@pytest.fixture
def own_database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of the test's own (for tests that see every customer, or kill the server)."""
    with fresh_database(backend, tmp_path_factory.mktemp("own")) as url:
        yield url


@pytest.fixture
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of the test's own on PostgreSQL only (for what PostgreSQL alone does)."""
    with fresh_database("postgres", tmp_path_factory.mktemp("own")) as url:
        yield url


@pytest.fixture
def app(own_database_url: str) -> Iterator[InProcess]:
    """meterline in this process on a database of the test's own, evaluated when the test says."""
    with in_process(own_database_url) as running:
        yield running


@pytest.fixture(scope="session")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real `meterline serve` process per backend (per worker under pytest-xdist), shared by
    the session's tests: each test makes customers of its own and looks only at them. A test that
    needs an empty database, other settings, or kills or restarts its server starts its own.

    Its engine runs as a user's does, in processes of its own (the default layout): most API tests
    run here, so the wake-ups, metrics and deliveries that cross those processes are exercised by
    all of them. The servers tests start for other reasons run their engine as threads where its
    layout is not what they test (`ENGINE_IN_THREADS`)."""
    running = start_server(database_url, tmp_path_factory.mktemp("server"))
    try:
        yield running
    finally:
        running.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line on PostgreSQL: where its variants ran, or how many were skipped and how to run them.

    Under pytest-xdist this runs in the controlling process, which holds every worker's reports."""
    if hasattr(terminalreporter.config, "workerinput"):
        return
    skipped_reports = terminalreporter.stats.get("skipped", [])
    browser_skips = sum(1 for r in skipped_reports if BROWSER_SKIP_REASON in str(r.longrepr))
    if browser_skips:
        terminalreporter.write_line(
            f"{browser_skips} browser tests skipped: {BROWSER_SKIP_REASON}.", yellow=True, bold=True
        )
    url = postgres_server_url()
    if url is not None:
        shown = make_url(url).render_as_string(hide_password=True)
        terminalreporter.write_line(
            f"PostgreSQL variants ran on {shown} (set {POSTGRES_ENV}=off to skip them)"
        )
        return
    reason = postgres_skip_reason()
    skipped = sum(1 for r in terminalreporter.stats.get("skipped", []) if reason in str(r.longrepr))
    if skipped:
        tests = "test" if skipped == 1 else "tests"
        terminalreporter.write_line(
            f"{skipped} PostgreSQL {tests} skipped: {reason}.", yellow=True, bold=True
        )
