"""Debian's Chromium, headless under Playwright, for the tests that read pages as a
reader's browser shows them (the book, the learners' feedback pages).

``launch()`` skips the test, saying why, where Chromium (``apt-get install chromium``)
or Playwright (``pip install -e '.[dev]'``) is missing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def launch() -> Iterator:
    """A Playwright browser on Debian's Chromium, closed at the end of the block."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"no browser: {CHROMIUM} is not installed (apt-get install -y chromium)"
        )
    api = pytest.importorskip(
        "playwright.sync_api",
        reason="playwright is not installed (pip install -e '.[dev]')",
    )
    with api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
