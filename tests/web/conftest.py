"""Browser fixtures: the operating system's Chromium (never a downloaded one), driven by Playwright.

Without /usr/bin/chromium the browser tests are skipped, and the run ends with one line saying so
(tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from metronome import Metronome

from tests.support.browser import CHROMIUM, require_chromium
from tests.support.server import RunningServer


# Module-scoped, not session: while Playwright's sync API runs, its event loop counts as running in
# this thread, and later tests of the same worker calling asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 360, "height": 800})
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def client(server: RunningServer) -> Metronome:
    return Metronome(bearer_token=server.token, base_url=server.base_url, max_retries=0)
