"""Self-service password change at /account/password/: the current password, inside the sudo window, audited,
every other session of the user signed out and the current one kept."""

import time

import pytest
from django.conf import settings
from django.test import Client

from apps.accounts.models import UserSession
from apps.accounts.sudo import SUDO_SESSION_KEY
from apps.audit.models import AuditEvent
from tests.factories import DEFAULT_PASSWORD
from tests.mfa import browser_sign_in, sudo_force_login, totp_device_create

PAGE = "/account/password/"
NEW_PASSWORD = "Tangerine-Orbit-Lantern-58"
# Kept after the run so that a person can look at them.
SCREENSHOT_DIR = settings.DATA_DIR / "screenshots"


def _form(old: str = DEFAULT_PASSWORD, new: str = NEW_PASSWORD) -> dict:
    return {"old_password": old, "new_password1": new, "new_password2": new}


def _is_signed_in(client) -> bool:
    response = client.get("/account/")
    assert response.status_code in (200, 302)
    return response.status_code == 200


@pytest.fixture
def sudo_client(client, viewer_user):
    sudo_force_login(client, viewer_user)
    return client


@pytest.mark.django_db
def test_wrong_current_password_is_a_form_error_and_counts_as_a_failed_sign_in(sudo_client, viewer_user):
    response = sudo_client.post(PAGE, _form(old="not-my-password-at-all"))

    assert response.status_code == 200
    assert "That is not your current password." in response.content.decode()
    viewer_user.refresh_from_db()
    assert viewer_user.check_password(DEFAULT_PASSWORD)
    assert AuditEvent.objects.filter(action="auth.login.failed", changes_text__contains=viewer_user.username).exists()
    assert not AuditEvent.objects.filter(action="accounts.password.changed").exists()


@pytest.mark.django_db
def test_new_passwords_that_differ_or_are_weak_are_form_errors(sudo_client, viewer_user):
    mismatch = sudo_client.post(PAGE, {**_form(), "new_password2": NEW_PASSWORD + "x"})
    weak = sudo_client.post(PAGE, _form(new="12345678"))

    assert "The two password fields didn\N{RIGHT SINGLE QUOTATION MARK}t match." in mismatch.content.decode()
    assert "This password is too short" in weak.content.decode()
    viewer_user.refresh_from_db()
    assert viewer_user.check_password(DEFAULT_PASSWORD)


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post"])
def test_stolen_session_outside_sudo_window_is_sent_to_reauthenticate(client, viewer_user, method):
    sudo_force_login(client, viewer_user)
    session = client.session
    session[SUDO_SESSION_KEY] = time.time() - settings.SUDO_WINDOW_MINUTES * 60 - 1
    session.save()

    response = client.post(PAGE, _form()) if method == "post" else client.get(PAGE)

    assert response.status_code == 302
    assert response["Location"] == "/account/reauthenticate/?next=%2Faccount%2Fpassword%2F"
    viewer_user.refresh_from_db()
    assert viewer_user.check_password(DEFAULT_PASSWORD)
    assert not AuditEvent.objects.filter(action="accounts.password.changed").exists()


@pytest.mark.django_db
def test_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.post(PAGE, _form())

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_password_change_signs_out_other_sessions_keeps_this_one_and_audits_without_the_password(
    sudo_client, viewer_user
):
    other_browser = Client()
    other_browser.force_login(viewer_user)
    assert _is_signed_in(other_browser)
    other_key = other_browser.session.session_key
    old_hash = viewer_user.password
    last_event = AuditEvent.objects.order_by("id").last().id

    response = sudo_client.post(PAGE, _form())

    assert response.status_code == 302
    assert response["Location"] == "/account/"
    viewer_user.refresh_from_db()
    assert viewer_user.check_password(NEW_PASSWORD)
    assert not _is_signed_in(other_browser)
    assert not UserSession.objects.filter(session_key=other_key).exists()
    account_page = sudo_client.get("/account/")  # still signed in
    assert "Your password was changed. 1 other session signed out." in account_page.content.decode()
    current = UserSession.objects.get(user=viewer_user)  # this session's entry followed its new key
    assert current.session_key == sudo_client.session.session_key
    event = AuditEvent.objects.get(action="accounts.password.changed")
    assert event.actor_username == viewer_user.username
    assert event.object_id == str(viewer_user.pk)
    assert event.changes == {"by": "self", "usable": True, "signed_out": 1}
    for row in AuditEvent.objects.filter(id__gt=last_event):
        for secret in (NEW_PASSWORD, DEFAULT_PASSWORD, old_hash, viewer_user.password):
            assert secret not in row.changes_text, row.action


@pytest.fixture
def viewer_key(viewer_user):
    return totp_device_create(viewer_user).key


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", [1366, 390])
def test_password_page_fits_desktop_and_phone_widths(live_server, viewer_key, viewer_user, password, width, chromium):
    page = chromium.new_page(viewport={"width": width, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/?next={PAGE}")
    # Signing in with password and code opens the sudo window: the password page shows straight away.
    browser_sign_in(
        page,
        username=viewer_user.username,
        password=password,
        key_hex=viewer_key,
        submit="main button[type=submit]",
        landing=live_server.url + PAGE,
    )
    page.fill("#id_old_password", "wrong-current-password")
    page.fill("#id_new_password1", NEW_PASSWORD)
    page.fill("#id_new_password2", NEW_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector("#old_password-errors")

    assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
    field = page.locator("#id_new_password1").bounding_box()
    assert field["x"] >= 0
    assert field["x"] + field["width"] <= width
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / f"account-password-{width}.png"), full_page=True)
    page.close()
