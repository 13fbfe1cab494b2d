"""Browser fixtures for the web hub's tests: Debian's chromium driven by Playwright (never ``playwright
install``), one browser per session, a fresh profile, and a screenshot of every page a test visits under
``test-artifacts/screenshots/`` (kept as a CI artifact).

A missing chromium skips these tests locally and fails them under ``CI=true`` (``tests/support/tools.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.app_server import AppServer
from tests.support.hub import HubAdmin
from tests.support.tools import missing

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One chromium for the web tests (each launch is a Node driver and a browser: ~2 s of CPU). Package-scoped,
    not session-scoped: Playwright's sync API keeps an event loop running in the main thread while it lives, which
    would make every asyncio test collected after the web tests fail (there are none in this package)."""
    if not CHROMIUM.exists():
        missing("chromium is not installed (make test installs Debian's chromium when run as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - a dev dependency
        missing("playwright (the Python package) is not installed; run make dev")
    with sync_playwright() as playwright:
        # launch() gives chromium a fresh temporary profile (user-data-dir) of its own, removed at close.
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def browser_context_factory(browser: Any) -> Iterator[Any]:
    """Makes isolated browser contexts (own cookies, no shared state) on the one chromium; closed with the
    module."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        context = browser.new_context(viewport=DESKTOP, **options)
        contexts.append(context)
        return context

    try:
        yield make
    finally:
        for context in contexts:
            context.close()


@pytest.fixture(scope="module")
def admin(secure_server: AppServer) -> Iterator[HubAdmin]:
    hub = HubAdmin(secure_server)
    yield hub
    hub.close()


def shot(page: Any, name: str, *, phone: bool = False, axe: bool = True) -> Path:
    """Write a full-page screenshot of what the page shows now (at phone width too when asked), after checking it
    with axe-core (``tests.web.pages.check_accessibility``): every page the tests photograph is checked."""
    from tests.web.pages import check_accessibility

    if axe:
        check_accessibility(page, name)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    path = SCREENSHOTS / f"{safe}.png"
    page.screenshot(path=str(path), full_page=True)
    if phone:
        size = page.viewport_size
        page.set_viewport_size(PHONE)
        page.screenshot(path=str(SCREENSHOTS / f"{safe}-phone.png"), full_page=True)
        page.set_viewport_size(size)
    return path
