"""What the browser tests share: signing in through the form (in the browser and with httpx), watching for
dialogs, the HTML/JS payloads that must stay inert, and the axe-core accessibility check.

axe-core comes from PyPI (``axe-playwright-python`` ships ``axe.min.js``; a dev dependency in the lock). It is
evaluated in the page through the DevTools protocol, which the page's Content-Security-Policy does not govern
(a ``<script>`` tag added by ``add_script_tag`` would be refused by ``script-src 'self'``, rightly).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib.resources import files
from typing import Any

import httpx

from tests.support.app_server import AppServer

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2"><svg onload="window.__xss=3"></svg>'
README_XSS = (
    "# Hello\n\n<script>window.__xss=4</script>\n\n[click](javascript:window.__xss=5)\n\n"
    '<img src=x onerror="window.__xss=6">\n\n| a | b |\n|---|---|\n| 1 | 2 |\n'
)
SERIOUS = ("serious", "critical")


@cache
def axe_source() -> str:
    return files("axe_playwright_python").joinpath("axe.min.js").read_text(encoding="utf-8")


def check_accessibility(page: Any, name: str) -> None:
    """Run axe-core on the page as it is now; fail on any serious or critical violation."""
    if page.evaluate("typeof window.axe") == "undefined":
        page.evaluate(axe_source())
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    found = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:5]}"
        for v in result["violations"]
        if v.get("impact") in SERIOUS
    ]
    assert not found, f"{name}: {found}"


_LOGIN_SHOT: list[bool] = []  # the sign-in page is photographed and checked once per test process


def sign_in(page: Any, server: AppServer, username: str, password: str) -> None:
    """Sign in on the login page; the first sign-in of the test process photographs and checks that page (it is
    the same page every time: ~0.5 s of axe-core and a screenshot each)."""
    from tests.web.conftest import shot

    page.goto(f"{server.url}/login")
    if not _LOGIN_SHOT:
        shot(page, "login")
        _LOGIN_SHOT.append(True)
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("form.stack button[type=submit]")
    page.wait_for_selector("[data-testid=signed-in-as]")
    assert page.inner_text("[data-testid=signed-in-as]") == username


def watch_scripts(page: Any) -> list[str]:
    """Dialogs opened by the page (none may be); ``window.__xss`` is checked separately."""
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return dialogs


def assert_inert(page: Any, server: AppServer, where: str) -> None:
    """No payload ran or became an element: no handler attribute, no script but ours, no javascript: link."""
    assert page.evaluate("window.__xss") is None, where
    assert page.locator("main [onerror], main [onload], main svg, main script").count() == 0, where
    assert page.evaluate("Array.from(document.scripts).map(s => s.src)") == [f"{server.url}/static/site.js"], where
    assert page.locator("a[href^='javascript:']").count() == 0, where


@contextmanager
def signed_in_client(server: AppServer, user: str, password: str) -> Iterator[httpx.Client]:
    """A client signed in through the login form (its cookies are the session's)."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert token is not None
        response = client.post("/login", data={"username": user, "password": password, "csrf_token": token.group(1)})
        assert response.status_code == 303, response.text
        yield client


def csrf(client: httpx.Client, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)
