"""Where the browser tests find Chromium: the operating system's package, never a downloaded one."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_SKIP_REASON = f"no Chromium at {CHROMIUM} (apt-get install chromium)"


def require_chromium() -> None:
    """Skip unless Chromium is installed; every such skip is reported as this one place."""
    if not CHROMIUM.exists():
        pytest.skip(BROWSER_SKIP_REASON)
