"""Single sign-on in headless Chromium: the portal's sign-in page, the provider's own login page (a real
oidc-provider on 127.0.0.1), and back into the admin with the role of the user's group.

Screenshots of the sign-in page with its SSO button land in var/screenshots/sso-login-*.png.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from playwright.sync_api import expect

from apps.accounts.models import OidcIdentity
from tests.helpers import free_port
from tests.oidc import PASSWORD, portal_configure, provider_start, provider_stop, user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("roles")]

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"


def in_thread(function):
    """Run a database read outside Playwright's thread, where Django refuses it."""

    def run():
        try:
            return function()
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


@pytest.fixture
def sso(asgi_live_server, settings):
    provider = provider_start(
        portal_origins=[asgi_live_server], users={"ada": user(["ops-admins"], amr=["pwd", "otp"])}
    )
    portal_configure(settings, provider.issuer, OIDC_BUTTON_LABEL="Example SSO")
    yield asgi_live_server
    provider_stop(provider)


def test_an_administrator_signs_in_through_the_provider_and_lands_in_the_admin_with_their_groups_role(sso, chromium):
    context = chromium.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.goto(f"{sso}/accounts/login/?next=/admin/")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "sso-login-laptop.png", full_page=True)
    page.get_by_role("link", name="Sign in with Example SSO").click()
    # The provider's own login page.
    page.locator("#provider-login").fill("ada")
    page.locator("#provider-password").fill(PASSWORD)
    page.locator("#provider-submit").click()
    expect(page).to_have_url(f"{sso}/admin/")
    expect(page.locator("body")).to_contain_text("ada")
    # Signing out posts to the portal, which redirects to the provider's end-session endpoint: the page's
    # Content-Security-Policy lets the form go there (form-action holds the provider's origin while SSO is on).
    refused = []
    page.on("console", lambda message: "Content Security Policy" in message.text and refused.append(message.text))
    page.evaluate("document.getElementById('logout-form').requestSubmit()")
    page.wait_for_url(f"{settings.OIDC_ISSUER}/**")
    assert refused == []
    context.close()

    ada = in_thread(lambda: OidcIdentity.objects.select_related("user").get(subject="ada").user)
    assert in_thread(lambda: ada.role_names) == ["admin"]
    assert ada.is_staff


@pytest.mark.pages
def test_the_sign_in_page_shows_the_sso_button_at_a_phones_width(sso, chromium):
    context = chromium.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"{sso}/accounts/login/")
    expect(page.get_by_role("link", name="Sign in with Example SSO")).to_be_visible()
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    page.screenshot(path=SCREENSHOTS / "sso-login-phone.png", full_page=True)
    context.close()


@pytest.mark.pages
def test_a_provider_that_is_down_leads_to_a_page_that_names_it_and_points_to_local_sign_in(
    asgi_live_server, settings, chromium
):
    portal_configure(settings, f"http://127.0.0.1:{free_port()}", OIDC_BUTTON_LABEL="Example SSO")
    for name, viewport in (("laptop", {"width": 1366, "height": 900}), ("phone", {"width": 390, "height": 844})):
        context = chromium.new_context(viewport=viewport)
        page = context.new_page()
        page.goto(f"{asgi_live_server}/accounts/login/")
        page.get_by_role("link", name="Sign in with Example SSO").click()
        expect(page.locator("h1")).to_have_text("The sign-in provider cannot be reached")
        expect(page.locator("#oidc-provider")).to_contain_text("Example SSO (127.0.0.1:")
        assert page.evaluate(NO_SIDEWAYS_SCROLL)
        page.screenshot(path=SCREENSHOTS / f"sso-provider-down-{name}.png", full_page=True)
        page.get_by_role("link", name="sign in with a password").click()
        expect(page).to_have_url(f"{asgi_live_server}/accounts/login/")
        context.close()
