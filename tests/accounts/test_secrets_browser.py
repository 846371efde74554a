"""Secrets shown once, in headless Chromium: a new token and recovery codes are copied with a button, the token
wraps inside its card, and reloading the token page neither re-submits the form nor shows the secret again."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.mfa import browser_sign_in, totp_device_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CLIPBOARD = "() => navigator.clipboard.readText()"


@pytest.fixture
def signed_in_page(live_server, operator_user, password):
    """Opens ``path`` after signing the operator in with a code (which also counts as a fresh re-authentication),
    in a browser context that may use the clipboard; closing the browser closes it."""
    key = totp_device_create(operator_user).key

    def open_page(browser, path: str):
        page = browser.new_context(permissions=["clipboard-read", "clipboard-write"]).new_page()
        page.goto(live_server.url + path)
        page.wait_for_url("**/accounts/login/**")
        browser_sign_in(
            page,
            username=operator_user.username,
            password=password,
            key_hex=key,
            submit="main button[type=submit]",
            landing=f"**{path}",
        )
        return page

    return open_page


def test_new_token_is_copied_wraps_in_its_card_and_a_reload_neither_resubmits_nor_shows_it(signed_in_page, chromium):
    expiry_day = timezone.now().date() + timedelta(days=30)
    in_30_days = expiry_day.isoformat()
    page = signed_in_page(chromium, "/account/tokens/new/")
    page.click("button[data-expiry-date]:has-text('30 days')")
    expect(page.locator("#id_expires_on")).to_have_value(in_30_days)
    page.fill("#id_name", "notebook")
    page.click("main button[type=submit]")
    page.wait_for_url("**/account/tokens/created/")

    secret = page.locator("#token-secret").inner_text()
    assert secret.startswith("odk_")
    secret_box, card_box = page.locator("#token-secret").bounding_box(), page.locator("main .card").bounding_box()
    assert secret_box["x"] + secret_box["width"] <= card_box["x"] + card_box["width"]
    assert f"expires {expiry_day.day} {expiry_day:%b %Y}" in page.locator("main .card").inner_text()

    page.click("text=Copy token")
    expect(page.locator("text=Copied")).to_be_visible()
    assert page.evaluate(CLIPBOARD) == secret
    page.click("text=Copy command")
    assert (
        page.evaluate(CLIPBOARD) == f'curl -H "Authorization: Bearer {secret}" {page.url.split("/account/")[0]}/api/v1/'
    )

    page.reload()
    page.wait_for_url("**/account/")
    assert secret not in page.content()
    assert "shown once and is gone" in page.content()
    expect(page.locator("#tokens tbody tr")).to_have_count(1)  # the reload created no second token


def test_recovery_codes_are_copied_all_at_once(signed_in_page, chromium):
    page = signed_in_page(chromium, "/account/mfa/recovery-codes/new/")
    page.click("main button[type=submit]")
    page.wait_for_url(lambda url: url.split("?")[0].endswith("/account/mfa/recovery-codes/"))
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10

    page.click("text=Copy all codes")

    expect(page.locator("text=Copied")).to_be_visible()
    assert page.evaluate(CLIPBOARD).split() == codes
