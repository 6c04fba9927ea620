"""Where the browser tests find Chromium: the operating system's package, never a downloaded one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_SKIP_REASON = f"no Chromium at {CHROMIUM} (apt-get install chromium)"


def require_chromium() -> None:
    """Skip unless Chromium is installed; every such skip is reported as this one place."""
    if not CHROMIUM.exists():
        pytest.skip(BROWSER_SKIP_REASON)


def expect(target: Any) -> Any:
    """Playwright's `expect`, imported on first use: every test process imported Playwright while
    collecting (about a twentieth of collection's CPU), and only the browser tests use it."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)
