"""Password reset end to end in headless Chromium, against the real ASGI app, a real Celery worker and a real SMTP
server: "Forgot your password?", the email, its link, a new password, then signing in with it and the authenticator's
code. At a laptop's width and a phone's; screenshots of every step land in var/screenshots/password-reset-*.png.
"""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from playwright.sync_api import expect

from apps.accounts.tokens import token_create
from tests.helpers import AXE_SERIOUS, axe_add
from tests.mail_server import html_body, text_body
from tests.mfa import totp_code, totp_device_create
from tests.shell_pages import PageProblems

pytestmark = [
    pytest.mark.browser,
    pytest.mark.pages,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("roles"),
]

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
VIEWPORTS = {"laptop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
NEW_PASSWORD = "Harbour-Copper-Kestrel-73"
RECOVERY_CODE = "keep1234"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
LINK = re.compile(r"https?://\S+/accounts/password-reset/[^/\s]+/[^/\s]+/")


@pytest.fixture
def portal(asgi_live_server, settings):
    """The live portal, which its emails link to."""
    settings.PORTAL_URL = asgi_live_server
    return asgi_live_server


@pytest.fixture
def account(viewer_user, password):
    """A viewer with an authenticator, an API token, and a browser elsewhere signed in (with a recovery code, so the
    authenticator's current code is still unused for the sign-in in the test)."""
    device = totp_device_create(viewer_user)
    recovery = StaticDevice.objects.create(user=viewer_user, name="Recovery codes", confirmed=True)
    StaticToken.objects.create(device=recovery, token=RECOVERY_CODE)
    token_create(owner=viewer_user, name="nightly export", scopes=["read"], expires_in_days=30)
    elsewhere = Client(HTTP_USER_AGENT=FIREFOX, REMOTE_ADDR="192.0.2.10")
    signed_in = elsewhere.post("/accounts/login/", {"username": viewer_user.username, "password": password})
    assert signed_in.status_code == 302
    assert elsewhere.post("/accounts/login/code/", {"code": RECOVERY_CODE}).status_code == 302
    return viewer_user, device.key


class Steps:
    """The tab, each step photographed and checked: no sideways scrolling, no serious axe-core violation."""

    def __init__(self, page, name: str):
        self.page, self.name, self.count = page, name, 0

    def photograph(self, step: str) -> None:
        self.count += 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"password-reset-{self.name}-{self.count:02d}-{step}.png"
        self.page.screenshot(path=path, full_page=True)
        assert self.page.evaluate(NO_SIDEWAYS_SCROLL), f"{step} scrolls sideways at {self.name} width"
        axe_add(self.page)
        violations = self.page.evaluate(AXE_SERIOUS)
        assert violations == [], f"{step}: {violations}"


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_forgotten_password_is_reset_by_email_and_the_sign_in_still_asks_for_the_code(
    viewport, portal, celery_worker, smtp_server, account, chromium
):
    user, key_hex = account
    context = chromium.new_context(viewport=VIEWPORTS[viewport])
    page = context.new_page()
    problems = PageProblems(page)
    steps = Steps(page, viewport)

    page.goto(portal + "/accounts/login/")
    steps.photograph("sign-in")
    page.click("#forgot-password")
    page.wait_for_url(portal + "/accounts/password-reset/")
    steps.photograph("request")
    page.fill("#id_email", user.email)
    page.click("main button[type=submit]")
    page.wait_for_url(portal + "/accounts/password-reset/sent/")
    expect(page.locator("#reset-sent")).to_contain_text("If an account uses that address, we sent it a link")
    steps.photograph("sent")

    (message,) = smtp_server.wait_for(1, to=user.email)
    link = LINK.search(text_body(message)).group(0)
    token = link.rstrip("/").rsplit("/", 1)[-1]
    steps.page = context.new_page()  # the email, as a mail client shows its HTML part
    steps.page.set_content(html_body(message))
    expect(steps.page.get_by_role("link", name="Set a new password")).to_have_attribute("href", link)
    steps.photograph("email")
    steps.page.close()
    steps.page = page
    page.goto(link)
    page.wait_for_url(re.compile(r".*/accounts/password-reset/[^/]+/set-password/$"))
    assert token not in page.url
    expect(page.locator("#reset-username")).to_have_text(user.username)
    steps.photograph("set-password")
    page.fill("#id_new_password1", NEW_PASSWORD)
    page.fill("#id_new_password2", NEW_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(portal + "/accounts/password-reset/done/")
    expect(page.locator("#reset-sessions")).to_contain_text("Firefox on Linux from 192.0.2.10")
    expect(page.locator("#reset-tokens")).to_contain_text("nightly export")
    steps.photograph("done")
    page.click("#revoke-tokens")
    page.wait_for_url(portal + "/accounts/password-reset/done/")
    expect(page.locator("#messages")).to_contain_text("Revoked 1 API token.")
    expect(page.locator("#reset-tokens")).to_contain_text("no API tokens that work")
    steps.photograph("tokens-revoked")

    page.click("#sign-in")
    page.wait_for_url(portal + "/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", NEW_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/accounts/login/code/**")
    steps.photograph("code")
    page.fill("#id_code", totp_code(key_hex))
    page.click("main button[type=submit]")
    page.wait_for_url(portal + "/dashboard/")
    steps.photograph("signed-in")

    used = context.new_page()
    steps.page = used
    used.goto(link)
    expect(used.locator("#reset-invalid")).to_contain_text("The link was used already")
    steps.photograph("link-used")
    assert problems.items == []
    context.close()


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_too_many_requests_from_one_address_get_a_page_naming_the_limit(viewport, portal, settings, chromium):
    settings.PASSWORD_RESET_RATE_PER_IP = "1/hour"
    context = chromium.new_context(viewport=VIEWPORTS[viewport])
    page = context.new_page()
    steps = Steps(page, f"{viewport}-throttled")

    for address in ("first@example.test", "second@example.test"):
        page.goto(portal + "/accounts/password-reset/")
        page.fill("#id_email", address)
        page.click("main button[type=submit]")
    expect(page.locator("#reset-throttled")).to_contain_text("at most 1 per hour are accepted from one address")
    steps.photograph("limited")
    context.close()
