"""Two-factor sign-in in a real browser: a user turns it on on the settings page (the QR code shown, then the
recovery codes once), the sign-in page then asks for a code after the password (a wrong code is refused, a TOTP
code signs in, a recovery code works once), and the user turns it off with a code. The organization settings
page shows and changes "require two-factor"."""

from __future__ import annotations

import time
from typing import Any

import pyotp
import pytest

from tests.support.app_server import AppServer
from tests.support.hub import HubAdmin
from tests.support.hub_accounts import SIGN_IN_OFTEN
from tests.web.conftest import shot
from tests.web.pages import sign_in


@pytest.fixture(scope="module")
def secure_server_env() -> dict[str, str]:
    return dict(SIGN_IN_OFTEN)


def _fresh_step() -> None:
    left = 30 - time.time() % 30
    if left < 4:
        time.sleep(left + 0.1)


def _password_step(page: Any, server: AppServer, user: str, password: str) -> None:
    page.goto(f"{server.url}/login")
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("form.stack button[type=submit]")
    page.wait_for_selector("[data-testid=code-form]")


def _sign_out(page: Any) -> None:
    page.click("form[action='/logout'] button")
    page.wait_for_selector("text=Sign in")


def test_turn_on_sign_in_with_a_code_and_turn_off(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin
) -> None:
    user, password = admin.user("twofa")
    page = browser_context_factory().new_page()
    sign_in(page, secure_server, user, password)
    page.click("[data-testid=two-factor-link]")
    assert "off" in page.inner_text("[data-testid=two-factor-state]")
    page.click("[data-testid=enrol-form] button")
    page.wait_for_selector("[data-testid=qr-code]")
    assert page.get_attribute("[data-testid=qr-code]", "src").startswith("data:image/svg+xml;base64,")
    assert page.evaluate("document.querySelector('[data-testid=qr-code]').naturalWidth") > 0  # a real image
    secret = page.inner_text("[data-testid=totp-secret]").strip()
    shot(page, "two-factor-enrol")
    # A wrong first code is refused; the enrolment starts again.
    page.fill("#confirm-code", "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    page.click("[data-testid=confirm-form] button")
    page.wait_for_selector("[data-testid=two-factor-error]")
    page.click("[data-testid=enrol-form] button")
    secret = page.inner_text("[data-testid=totp-secret]").strip()
    _fresh_step()
    page.fill("#confirm-code", pyotp.TOTP(secret).at(time.time() - 30))
    page.click("[data-testid=confirm-form] button")
    page.wait_for_selector("[data-testid=recovery-codes]")
    codes = [c.strip() for c in page.locator("[data-testid=recovery-codes] code").all_inner_texts()]
    assert len(codes) == 10
    assert "on" in page.inner_text("[data-testid=two-factor-state]")
    shot(page, "two-factor-recovery-codes")
    # Shown once: the page does not show them again.
    page.goto(f"{secure_server.url}/settings/security")
    assert page.locator("[data-testid=recovery-codes]").count() == 0
    _sign_out(page)

    # The password alone no longer signs in: the page asks for a code.
    _password_step(page, secure_server, user, password)
    shot(page, "login-2fa")
    assert page.locator("[data-testid=signed-in-as]").count() == 0
    page.fill("#code", "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    page.click("[data-testid=code-form] button")
    page.wait_for_selector("[data-testid=code-error]")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("[data-testid=code-form] button")
    page.wait_for_selector("[data-testid=signed-in-as]")
    _sign_out(page)

    # A recovery code works once.
    _password_step(page, secure_server, user, password)
    page.fill("#code", codes[0])
    page.click("[data-testid=code-form] button")
    page.wait_for_selector("[data-testid=signed-in-as]")
    _sign_out(page)
    _password_step(page, secure_server, user, password)
    page.fill("#code", codes[0])
    page.click("[data-testid=code-form] button")
    page.wait_for_selector("[data-testid=code-error]")

    # Turn it off with another recovery code; the password alone signs in again.
    page.fill("#code", codes[1])
    page.click("[data-testid=code-form] button")
    page.wait_for_selector("[data-testid=signed-in-as]")
    page.goto(f"{secure_server.url}/settings/security")
    page.fill("#disable-code", codes[2])
    page.click("[data-testid=disable-form] button")
    page.wait_for_selector("[data-testid=two-factor-notice]")
    assert "off" in page.inner_text("[data-testid=two-factor-state]")
    _sign_out(page)
    sign_in(page, secure_server, user, password)


def test_organization_settings_require_two_factor(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin
) -> None:
    owner, password = admin.user("tfaowner")
    org = admin.org(owner)
    page = browser_context_factory().new_page()
    sign_in(page, secure_server, owner, password)
    page.goto(f"{secure_server.url}/orgs/{org}/settings")
    assert not page.is_checked("#require-two-factor")
    # An owner without two-factor sign-in may not require it.
    page.check("#require-two-factor")
    page.click("[data-testid=require-two-factor] button")
    page.wait_for_selector("[data-testid=form-error]")
    assert "two-factor" in page.inner_text("[data-testid=form-error]")
    # With it, the owner may.
    page.goto(f"{secure_server.url}/settings/security")
    page.click("[data-testid=enrol-form] button")
    secret = page.inner_text("[data-testid=totp-secret]").strip()
    _fresh_step()
    page.fill("#confirm-code", pyotp.TOTP(secret).at(time.time() - 30))
    page.click("[data-testid=confirm-form] button")
    page.wait_for_selector("[data-testid=recovery-codes]")
    page.goto(f"{secure_server.url}/orgs/{org}/settings")
    page.check("#require-two-factor")
    page.click("[data-testid=require-two-factor] button")
    page.wait_for_selector("[data-testid=saved]")
    assert page.is_checked("#require-two-factor")
    shot(page, "org-settings-require-two-factor")
