"""Debian's chromium, headless, under Playwright: never a browser Playwright downloads (`make chromium` installs it)."""

from __future__ import annotations

import shutil
from pathlib import Path

from playwright.sync_api import BrowserContext, Playwright

CHROMIUM = "/usr/bin/chromium"
# As root in a container: no sandbox, no GPU, and nothing that talks to the network on its own.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


MISSING = "chromium is not installed: `make chromium` (apt-get install chromium)"


def installed() -> str | None:
    """Where chromium is, or None when it is not installed."""
    found = shutil.which("chromium") or CHROMIUM
    return found if Path(found).exists() else None


def chromium() -> str:
    found = installed()
    assert found is not None, MISSING
    return found


def launch(playwright: Playwright, profile: Path) -> BrowserContext:
    """A browser on a fresh profile (``profile``, an empty directory) with a desktop-sized window."""
    return playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=chromium(),
        headless=True,
        args=FLAGS,
        viewport={"width": 1400, "height": 1000},
    )
