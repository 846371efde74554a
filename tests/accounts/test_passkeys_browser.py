"""Passkeys in headless Chromium with its virtual authenticator (WebAuthn over the DevTools protocol).

A WebAuthn relying-party id cannot be an IP address, so these tests use pytest-django's live server at
http://localhost:<port> (a secure context for browsers) with WEBAUTHN_RP_ID=localhost. Pages are photographed at
a desktop and a phone width into var/screenshots/; none may scroll sideways on the phone.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from importlib import import_module
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connection
from playwright.sync_api import expect

from apps.accounts.sudo import SUDO_SESSION_KEY
from apps.audit.models import AuditEvent
from apps.backups.choices import BackupTrigger
from apps.backups.models import BackupJob
from apps.backups.services import backup_create
from tests.helpers import axe_add
from tests.shell_pages import AXE_SERIOUS, LAPTOP, photograph_both_widths

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
}


def _db(function, *args):
    """Run a database call off Playwright's event-loop thread, where Django refuses them."""

    def call():
        try:
            return function(*args)
        finally:
            connection.close()  # the thread's own connection: the test database is dropped at the end

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


@pytest.fixture
def rp_localhost(settings):
    settings.OTP_WEBAUTHN_RP_ID = "localhost"
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = ["https://localhost"]
    settings.PASSKEY_PASSWORDLESS_ROLES = []
    return settings


@pytest.fixture
def restorable_backup(transactional_db, backup_dir, admin_user):
    """A real backup of the test database (pg_dump, compressed and encrypted), as tests/backups use."""
    return backup_create(trigger=BackupTrigger.USER, actor=admin_user)


@pytest.fixture
def page(live_server, rp_localhost, chromium):
    assert urlsplit(live_server.url).hostname == "localhost"
    context = chromium.new_context(viewport=LAPTOP)
    tab = context.new_page()
    cdp = context.new_cdp_session(tab)
    cdp.send("WebAuthn.enable")
    authenticator = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
    tab.authenticator = (cdp, authenticator["authenticatorId"])
    tab.script_errors = []
    tab.on("pageerror", lambda error: tab.script_errors.append(str(error)))
    yield tab
    context.close()


def _photograph(page, name: str) -> None:
    """Both widths into var/screenshots/; no sideways scroll on the phone, no serious axe-core violation."""
    photograph_both_widths(page, f"passkeys-{name}")
    axe_add(page)
    assert page.evaluate(AXE_SERIOUS) == [], name


def _password_step(page, base_url: str, user, password: str, next_url: str = "/account/") -> None:
    page.goto(f"{base_url}/accounts/login/?next={next_url}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")


def _register(page, name: str) -> None:
    page.fill("#passkey-name", name)
    page.click("#passkey-register")


def _actions(user) -> list[str]:
    return list(
        AuditEvent.objects.filter(actor_id=user.pk, action__contains="passkey")
        .order_by("id")
        .values_list("action", flat=True)
    )


def _sign_out(page, base_url: str) -> None:
    page.context.clear_cookies()
    page.goto(base_url + "/accounts/login/")


def _sudo_expire(page) -> None:
    """Close the sudo window of the browser's session (as if it was opened long ago)."""
    key = next(c["value"] for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)

    def expire():
        store = import_module(settings.SESSION_ENGINE).SessionStore(key)
        store[SUDO_SESSION_KEY] = 0
        store.save()

    _db(expire)


def test_user_registers_passkeys_signs_in_with_one_as_second_factor_and_is_refused_after_removing_it(
    live_server, operator_user, password, page, rp_localhost
):
    base = live_server.url
    _password_step(page, base, operator_user, password)
    page.wait_for_url(base + "/account/")
    expect(page.locator("#passkey-none")).to_be_visible()
    _register(page, "Work laptop")
    expect(page.locator("#passkey-list tbody tr")).to_have_count(1)
    expect(page.locator("#passkey-list")).to_contain_text("Work laptop")
    expect(page.locator("#mfa-status")).to_contain_text("passkeys")
    _photograph(page, "account")

    # Names are per user: the same name twice is refused with a clear message, nothing is stored.
    _register(page, "Work laptop")
    expect(page.locator("#passkey-register-status")).to_contain_text("already have a passkey named")
    expect(page.locator("#passkey-list tbody tr")).to_have_count(1)

    # Signing in again: the password, then the passkey.
    _sign_out(page, base)
    _password_step(page, base, operator_user, password, next_url="/account/")
    page.wait_for_url("**/accounts/login/code/**")
    expect(page.locator("#id_code")).to_have_count(0)  # no authenticator app: the passkey is the second step
    _photograph(page, "second-step")
    page.click("#passkey-login")
    page.wait_for_url(base + "/account/")
    expect(page.locator("#passkey-list td").nth(2)).not_to_have_text("never")  # last used

    # Removing it needs the sudo window, confirmed here with the passkey itself.
    _sudo_expire(page)
    page.click("#passkey-list a:has-text('Remove')")
    page.wait_for_url("**/account/reauthenticate/**")
    expect(page.locator("#id_password")).to_have_count(0)  # a password alone would not stand for the passkey
    _photograph(page, "reauthenticate")
    page.click("#passkey-sudo")
    page.wait_for_url("**/account/passkeys/*/remove/")
    page.click("main button[type=submit]")
    page.wait_for_url(base + "/account/#passkeys")
    expect(page.locator("#passkey-none")).to_be_visible()

    # The authenticator still holds the credential; the portal no longer accepts it, even where passwordless
    # sign-in would be allowed.
    rp_localhost.PASSKEY_PASSWORDLESS_ROLES = ["operator"]
    _sign_out(page, base)
    page.click("#passkey-signin")
    expect(page.locator("#passkey-signin-status")).to_contain_text("not accepted")
    assert page.url.startswith(base + "/accounts/login/")
    assert _db(_actions, operator_user) == [
        "mfa.passkey.registered",
        "mfa.passkey.used",
        "mfa.passkey.used",
        "mfa.passkey.removed",
    ]
    assert page.script_errors == []


def test_passwordless_sign_in_only_for_the_roles_that_allow_it(
    live_server, operator_user, viewer_user, password, page, rp_localhost
):
    base = live_server.url
    rp_localhost.PASSKEY_PASSWORDLESS_ROLES = ["operator"]
    _password_step(page, base, viewer_user, password)
    page.wait_for_url(base + "/account/")
    _register(page, f"Key of {viewer_user.username}")
    expect(page.locator("#passkey-list tbody tr")).to_have_count(1)
    _sign_out(page, base)

    _photograph(page, "sign-in-passwordless")
    # The authenticator holds only the viewer's passkey: refused, for the role, not for the passkey.
    page.click("#passkey-signin")
    expect(page.locator("#passkey-signin-status")).to_contain_text("may not sign in with a passkey alone")
    assert page.url.startswith(base + "/accounts/login/")

    cdp, authenticator_id = page.authenticator
    (viewer_handle,) = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]
    cdp.send(
        "WebAuthn.removeCredential",
        {"authenticatorId": authenticator_id, "credentialId": viewer_handle["credentialId"]},
    )
    _password_step(page, base, operator_user, password)
    page.wait_for_url(base + "/account/")
    _register(page, f"Key of {operator_user.username}")
    expect(page.locator("#passkey-list tbody tr")).to_have_count(1)
    _sign_out(page, base)
    page.goto(base + "/accounts/login/?next=/account/")
    page.click("#passkey-signin")
    page.wait_for_url(base + "/account/")
    expect(page.locator("#profile")).to_contain_text(operator_user.username)
    assert page.script_errors == []


def test_admin_enrolls_with_a_passkey_and_uses_it_for_the_admin_and_for_a_restore(
    live_server,
    admin_user,
    password,
    restorable_backup,
    page,
):
    """The issue's "done when": a user registers a passkey and uses it for the admin and for a restore."""
    base = live_server.url
    _password_step(page, base, admin_user, password, next_url="/admin/")
    # The role requires a second factor: enrollment, where a passkey may stand instead of an authenticator app.
    page.wait_for_url("**/account/mfa/enroll/?next=%2Fadmin%2F")
    _photograph(page, "enroll")
    _register(page, "Security key")
    page.wait_for_url(base + "/admin/")
    assert page.locator("#site-name").inner_text() == "Opsdeck"  # the OTP-only admin accepts the passkey

    _sign_out(page, base)
    _password_step(page, base, admin_user, password, next_url="/admin/")
    page.wait_for_url("**/accounts/login/code/**")
    page.click("#passkey-login")
    page.wait_for_url(base + "/admin/")
    assert page.locator("#site-name").inner_text() == "Opsdeck"

    # A restore needs a fresh second factor: the passkey gives it.
    _sudo_expire(page)
    restore_url = f"{base}/backups/{restorable_backup.pk}/restore/"
    page.goto(restore_url)
    page.wait_for_url("**/account/reauthenticate/**")
    page.click("#passkey-sudo")
    page.wait_for_url(restore_url)
    expect(page.locator("#restore-replaces")).to_contain_text("is replaced with the contents of backup #")
    page.click("main button[type=submit]")
    page.wait_for_url("**/backups/jobs/**")
    job = _db(lambda: BackupJob.objects.filter(operation="restore").order_by("-id").first())
    assert job is not None
    assert job.owner_id == admin_user.pk
    assert _db(_actions, admin_user) == ["mfa.passkey.registered", "mfa.passkey.used", "mfa.passkey.used"]
    assert page.script_errors == []
