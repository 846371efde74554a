"""Passkeys without a browser: settings, the "enrolled" rules, the JSON doors' refusals, removal behind sudo.

The ceremonies themselves (a real authenticator signing challenges) are in test_passkeys_browser.py.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp_webauthn.models import WebAuthnCredential

from apps.accounts import selectors
from apps.accounts.models import User
from apps.accounts.sudo import SUDO_SESSION_KEY, SUDO_USER_SESSION_KEY
from apps.audit.models import AuditEvent
from project.settings.env import Environment
from project.settings.passkeys import passkey_settings
from tests.mfa import otp_force_login, totp_device_create

pytestmark = pytest.mark.django_db


def passkey_create(user, name: str = "Laptop") -> WebAuthnCredential:
    """A stored passkey of ``user`` (the key material is never checked by these tests)."""
    return WebAuthnCredential.objects.create(
        user=user, name=name, credential_id=os.urandom(32), public_key=os.urandom(77), confirmed=True
    )


def passkey_session(client, user, device, *, sudo: bool = True) -> None:
    """Sign ``client`` in as ``user`` verified with ``device`` (and, with ``sudo``, re-authenticated now)."""
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    if sudo:
        session[SUDO_SESSION_KEY] = time.time()
        session[SUDO_USER_SESSION_KEY] = str(user.pk)
    session.save()


def post_json(client, url: str, body: dict | None = None):
    return client.post(url, json.dumps(body or {}), content_type="application/json")


# --- Settings


def _settings(**variables):
    return passkey_settings(Environment(variables), allowed_hosts=["127.0.0.1", "portal.example.com"])


def test_relying_party_defaults_to_the_first_allowed_host_that_is_a_name():
    values = _settings()
    assert values["OTP_WEBAUTHN_RP_ID"] == "portal.example.com"
    assert values["OTP_WEBAUTHN_ALLOWED_ORIGINS"] == ["https://portal.example.com"]
    assert values["OTP_WEBAUTHN_RP_NAME"] == "Opsdeck"
    assert values["PASSKEY_PASSWORDLESS_ROLES"] == []


@pytest.mark.parametrize("value", ["10.0.0.5", "[::1]", "https://portal.example.com", "portal.example.com:8443"])
def test_relying_party_id_must_be_a_host_name(value):
    with pytest.raises(ImproperlyConfigured, match="WEBAUTHN_RP_ID"):
        _settings(WEBAUTHN_RP_ID=value)


@pytest.mark.parametrize("origin", ["http://portal.example.com", "https://evil.example.net", "https://x.com/path"])
def test_allowed_origins_must_be_secure_and_under_the_relying_party(origin):
    with pytest.raises(ImproperlyConfigured, match="WEBAUTHN_ALLOWED_ORIGINS"):
        _settings(WEBAUTHN_ALLOWED_ORIGINS=origin)


def test_allowed_origins_may_name_subdomains():
    values = _settings(WEBAUTHN_ALLOWED_ORIGINS="https://portal.example.com,https://eu.portal.example.com/")
    assert values["OTP_WEBAUTHN_ALLOWED_ORIGINS"] == ["https://portal.example.com", "https://eu.portal.example.com"]


def test_passwordless_roles_must_be_known_roles():
    with pytest.raises(ImproperlyConfigured, match="PASSKEY_PASSWORDLESS_ROLES"):
        _settings(PASSKEY_PASSWORDLESS_ROLES="admin,root")


# --- A passkey is a second factor everywhere


def test_a_user_whose_only_factor_is_a_passkey_counts_as_enrolled(admin_user):
    assert not selectors.user_has_confirmed_device(user=admin_user)
    passkey_create(admin_user)
    assert selectors.user_has_confirmed_device(user=admin_user)
    assert selectors.users_with_account_state(User.objects.filter(pk=admin_user.pk)).get().mfa_enabled
    assert selectors.mfa_methods(user=admin_user) == ["passkey"]


def test_mfa_methods_name_every_factor(admin_user):
    totp_device_create(admin_user)
    passkey_create(admin_user)
    from apps.accounts.services import _recovery_codes_replace

    _recovery_codes_replace(user=admin_user)
    assert selectors.mfa_methods(user=admin_user) == ["totp", "passkey", "recovery code"]


def test_admin_with_a_passkey_signed_in_without_it_is_sent_to_the_second_step_not_to_enrollment(client, admin_user):
    passkey_create(admin_user)
    client.force_login(admin_user)
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login-otp"))


def test_a_session_verified_with_a_passkey_opens_the_otp_only_admin(client, admin_user):
    passkey_session(client, admin_user, passkey_create(admin_user), sudo=False)
    assert client.get("/admin/").status_code == 200


def test_second_step_page_offers_the_passkey_and_no_code_field_without_an_authenticator_app(
    client, operator_user, password
):
    passkey_create(operator_user)
    response = client.post(reverse("login"), {"username": operator_user.username, "password": password})
    assert response["Location"].startswith(reverse("login-otp"))
    page = client.get(response["Location"]).content.decode()
    assert 'id="passkey-login"' in page
    assert 'name="code"' not in page


# --- The JSON doors refuse clearly


def test_passwordless_sign_in_is_refused_while_no_role_allows_it(client, settings):
    settings.PASSKEY_PASSWORDLESS_ROLES = []
    response = post_json(client, reverse("passkey-login-begin"))
    assert response.status_code == 403
    assert "password first" in response.json()["detail"]


def test_passwordless_sign_in_asks_for_a_discoverable_passkey_with_user_verification(client, settings):
    settings.PASSKEY_PASSWORDLESS_ROLES = ["operator"]
    options = post_json(client, reverse("passkey-login-begin")).json()
    assert options["userVerification"] == "required"
    assert not options.get("allowCredentials")
    assert options["rpId"] == settings.OTP_WEBAUTHN_RP_ID


def test_second_step_offers_only_the_passkeys_of_the_user_who_gave_the_password(
    client, operator_user, viewer_user, password
):
    mine = passkey_create(operator_user)
    passkey_create(viewer_user)
    client.post(reverse("login"), {"username": operator_user.username, "password": password})
    options = post_json(client, reverse("passkey-login-begin")).json()
    assert len(options["allowCredentials"]) == 1
    from webauthn.helpers import base64url_to_bytes

    assert base64url_to_bytes(options["allowCredentials"][0]["id"]) == bytes(mine.credential_id)


def test_a_forged_answer_is_refused_with_a_clear_message_and_its_challenge_cannot_be_reused(
    client, operator_user, password
):
    passkey_create(operator_user)
    client.post(reverse("login"), {"username": operator_user.username, "password": password})
    post_json(client, reverse("passkey-login-begin"))
    forged = {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}}
    first = post_json(client, reverse("passkey-login-complete"), forged)
    assert 400 <= first.status_code < 500
    assert first.json()["detail"]
    again = post_json(client, reverse("passkey-login-complete"), forged)
    assert again.status_code == 409
    assert "expired or was already used" in again.json()["detail"]
    assert AnonymousUser().is_authenticated is False
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="auth.passkey.failed").exists()


def test_a_body_that_is_not_json_is_a_400_not_a_500(client, operator_user):
    client.force_login(operator_user)
    response = client.post(reverse("passkey-register-begin"), "not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"] == "The request body must be JSON."


@pytest.mark.parametrize(("name", "message"), [("", "Give the passkey a name"), ("x" * 65, "at most 64 characters")])
def test_registration_needs_a_sensible_name(client, operator_user, name, message):
    client.force_login(operator_user)
    response = post_json(client, reverse("passkey-register-begin"), {"name": name})
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_registration_options_exclude_the_users_passkeys_and_name_the_relying_party(client, operator_user, settings):
    passkey_create(operator_user)
    client.force_login(operator_user)
    passkey_session(client, operator_user, WebAuthnCredential.objects.get(user=operator_user), sudo=False)
    options = post_json(client, reverse("passkey-register-begin"), {"name": "Phone"}).json()
    assert options["rp"] == {"id": settings.OTP_WEBAUTHN_RP_ID, "name": settings.OTP_WEBAUTHN_RP_NAME}
    assert len(options["excludeCredentials"]) == 1


def test_a_user_with_a_factor_must_have_used_it_before_adding_a_passkey(client, operator_user):
    totp_device_create(operator_user)
    client.force_login(operator_user)  # password only, not OTP-verified
    response = post_json(client, reverse("passkey-register-begin"), {"name": "Phone"})
    assert response.status_code == 403
    otp_force_login(client, operator_user)
    assert post_json(client, reverse("passkey-register-begin"), {"name": "Phone"}).status_code == 200


# --- Removal and the sudo window


def test_removing_a_passkey_needs_the_sudo_window(client, operator_user):
    device = passkey_create(operator_user)
    passkey_session(client, operator_user, device, sudo=False)
    url = reverse("passkey-remove", args=[device.pk])
    response = client.post(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("sudo"))
    assert WebAuthnCredential.objects.filter(pk=device.pk).exists()


def test_removing_a_passkey_in_the_sudo_window_deletes_it_and_is_audited(client, operator_user):
    kept = passkey_create(operator_user, "Security key")
    device = passkey_create(operator_user, "Old phone")
    passkey_session(client, operator_user, kept)
    response = client.post(reverse("passkey-remove", args=[device.pk]))
    assert response.status_code == 302
    assert list(WebAuthnCredential.objects.filter(user=operator_user).values_list("name", flat=True)) == [
        "Security key"
    ]
    event = AuditEvent.objects.get(action="mfa.passkey.removed")
    assert event.changes["name"] == "Old phone"


def test_nobody_removes_another_users_passkey(client, operator_user, viewer_user):
    theirs = passkey_create(viewer_user)
    passkey_session(client, operator_user, passkey_create(operator_user))
    client.post(reverse("passkey-remove", args=[theirs.pk]))
    assert WebAuthnCredential.objects.filter(pk=theirs.pk).exists()


def test_a_password_alone_does_not_open_the_sudo_window_of_a_passkey_user(client, operator_user, password):
    passkey_session(client, operator_user, passkey_create(operator_user), sudo=False)
    page = client.get(reverse("sudo")).content.decode()
    assert 'id="passkey-sudo"' in page
    assert 'name="password"' not in page
    response = client.post(reverse("sudo"), {"password": password})
    assert response.status_code == 200
    assert "Confirm with your passkey" in response.content.decode()
    assert SUDO_SESSION_KEY not in client.session


def test_a_user_with_an_authenticator_app_and_a_passkey_may_use_either_for_sudo(client, operator_user):
    totp_device_create(operator_user)
    passkey_session(client, operator_user, passkey_create(operator_user), sudo=False)
    page = client.get(reverse("sudo")).content.decode()
    assert 'name="password"' in page
    assert 'name="code"' in page
    assert 'id="passkey-sudo"' in page


def test_an_admins_mfa_reset_removes_the_passkeys_too(admin_user, operator_user):
    from apps.accounts.services import mfa_remove

    totp_device_create(operator_user)
    passkey_create(operator_user)
    mfa_remove(user=operator_user, actor=admin_user, include_passkeys=True)
    assert not selectors.user_has_confirmed_device(user=operator_user)
    assert AuditEvent.objects.get(action="mfa.removed").changes["factors"] == "all"


def test_turning_off_the_authenticator_app_keeps_the_passkeys(operator_user):
    from apps.accounts.services import mfa_remove

    totp_device_create(operator_user)
    passkey_create(operator_user)
    mfa_remove(user=operator_user)
    assert selectors.mfa_methods(user=operator_user) == ["passkey"]


def test_a_session_verified_with_a_passkey_passes_the_websocket_and_api_session_rule(client, admin_user):
    from apps.accounts.access import session_refusal

    passkey_session(client, admin_user, passkey_create(admin_user), sudo=False)
    assert session_refusal(session_key=client.session.session_key) is None


def test_administrators_see_passkeys_in_the_admin(client, superuser):
    passkey_create(superuser, "Admin key")
    passkey_session(client, superuser, WebAuthnCredential.objects.get(user=superuser), sudo=False)
    response = client.get(reverse("admin:django_otp_webauthn_webauthncredential_changelist"))
    assert response.status_code == 200
    assert "Admin key" in response.content.decode()


def test_removing_someones_passkey_in_the_admin_needs_a_fresh_second_factor_and_is_audited(client, superuser):
    from tests.mfa import sudo_expire

    lost = passkey_create(superuser, "Lost phone")
    passkey_session(client, superuser, passkey_create(superuser, "Admin key"))
    url = reverse("admin:django_otp_webauthn_webauthncredential_delete", args=[lost.pk])
    sudo_expire(client)
    assert client.post(url, {"post": "yes"})["Location"].startswith(reverse("sudo"))
    assert WebAuthnCredential.objects.filter(pk=lost.pk).exists()
    session = client.session
    session[SUDO_SESSION_KEY] = time.time()
    session.save()
    client.post(url, {"post": "yes"})
    assert not WebAuthnCredential.objects.filter(pk=lost.pk).exists()
    assert AuditEvent.objects.get(action="mfa.passkey.removed").actor_id == superuser.pk
