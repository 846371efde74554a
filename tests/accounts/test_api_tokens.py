"""API tokens: issued once, hashed at rest, scoped, expiring, address-bound, never self-replicating."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import ApiToken
from apps.accounts.tokens import PREFIX_LENGTH, token_create
from apps.audit.models import AuditEvent
from tests.mfa import otp_force_login, sudo_force_login

pytestmark = pytest.mark.django_db
TOKENS = "/api/v1/auth/tokens/"
ME = "/api/v1/accounts/me/"


def _bearer(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def _issue(user, **options):
    defaults = {"name": "ci", "scopes": ["read"], "expires_in_days": 30}
    return token_create(owner=user, **(defaults | options))


def test_token_created_in_a_session_is_shown_once_and_stored_hashed(client, operator_user, caplog):
    caplog.set_level(logging.DEBUG)
    sudo_force_login(client, operator_user)
    response = client.post(TOKENS, {"name": "notebook", "scopes": ["read", "write"]}, content_type="application/json")
    assert response.status_code == 201, response.content
    secret = response.json()["token"]
    assert secret.startswith(response.json()["prefix"] + "_")
    token = ApiToken.objects.get()
    stored = {field.attname: str(getattr(token, field.attname)) for field in ApiToken._meta.concrete_fields}
    assert not [name for name, value in stored.items() if secret[PREFIX_LENGTH + 1 :] in value]
    assert (token.expires - timezone.now()).days in (89, 90)
    assert "token" not in client.get(TOKENS).json()["results"][0]
    assert secret not in caplog.text
    for event in AuditEvent.objects.all():
        assert secret not in str(event.changes)
    assert AuditEvent.objects.filter(action="auth.token.created", actor=operator_user).exists()


def test_valid_token_authenticates_and_notes_its_use(client, viewer_user):
    issued = _issue(viewer_user)
    response = client.get(ME, **_bearer(issued.secret))
    assert response.status_code == 200
    assert response.json()["username"] == viewer_user.username
    issued.token.refresh_from_db()
    assert issued.token.last_used is not None
    assert issued.token.last_used_ip == "127.0.0.1"


@pytest.mark.parametrize(
    ("tamper", "detail"),
    [
        (lambda t: setattr(t, "expires", timezone.now() - timedelta(minutes=1)), "expired on"),
        (lambda t: setattr(t, "revoked", timezone.now()), "was revoked on"),
    ],
    ids=["expired", "revoked"],
)
def test_expired_or_revoked_token_gets_401_saying_why(client, viewer_user, tamper, detail):
    issued = _issue(viewer_user)
    tamper(issued.token)
    issued.token.save()
    response = client.get(ME, **_bearer(issued.secret))
    assert response.status_code == 401
    assert detail in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_unknown_token_gets_401(client):
    response = client.get(ME, **_bearer("odk_deadbeef_not-a-real-secret"))
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token.", "code": "authentication_failed"}


def test_read_token_cannot_write(client, operator_user):
    issued = _issue(operator_user, scopes=["read"])
    response = client.post(TOKENS, {"name": "x"}, content_type="application/json", **_bearer(issued.secret))
    assert response.status_code == 403
    assert "writing needs the write scope" in response.json()["detail"]


def test_token_from_an_address_outside_its_networks_gets_403(client, viewer_user):
    issued = _issue(viewer_user, allowed_networks=["10.0.0.0/8"])
    response = client.get(ME, **_bearer(issued.secret))
    assert response.status_code == 403
    assert "may not be used from 127.0.0.1" in response.json()["detail"]
    assert client.get(ME, REMOTE_ADDR="10.1.2.3", **_bearer(issued.secret)).status_code == 200


def test_token_cannot_create_tokens(client, operator_user):
    issued = _issue(operator_user, scopes=["read", "write"])
    response = client.post(TOKENS, {"name": "child"}, content_type="application/json", **_bearer(issued.secret))
    assert response.status_code == 403
    assert "API tokens cannot create" in response.json()["detail"]
    assert ApiToken.objects.count() == 1


def test_only_administrators_get_tokens_that_never_expire(client, operator_user, admin_user):
    sudo_force_login(client, operator_user)
    response = client.post(TOKENS, {"name": "forever", "expires_in_days": None}, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"] == ("Only administrators may create tokens that never expire; set an expiry.")
    sudo_force_login(client, admin_user)
    response = client.post(TOKENS, {"name": "forever", "expires_in_days": None}, content_type="application/json")
    assert response.status_code == 201
    assert response.json()["expires"] is None


def test_expiry_beyond_the_maximum_is_refused_naming_the_limit(client, operator_user, settings):
    settings.API_TOKEN_MAX_DAYS = 365
    sudo_force_login(client, operator_user)
    response = client.post(TOKENS, {"name": "long", "expires_in_days": 400}, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"] == "A token expires after 1 to at most 365 days."
    assert not ApiToken.objects.exists()


def test_revoking_a_token_stops_it_at_once(client, operator_user):
    issued = _issue(operator_user)
    client.force_login(operator_user)
    assert client.delete(f"{TOKENS}{issued.token.pk}/").status_code == 204
    client.logout()
    assert client.get(ME, **_bearer(issued.secret)).status_code == 401
    assert AuditEvent.objects.filter(action="auth.token.revoked", object_id=str(issued.token.pk)).exists()


def test_users_see_and_revoke_only_their_own_tokens(client, operator_user, viewer_user):
    theirs = _issue(viewer_user)
    client.force_login(operator_user)
    assert client.get(TOKENS).json()["results"] == []
    assert client.delete(f"{TOKENS}{theirs.token.pk}/").status_code == 404
    theirs.token.refresh_from_db()
    assert theirs.token.revoked is None


def test_use_from_a_new_address_is_audited(client, viewer_user):
    issued = _issue(viewer_user)
    client.get(ME, REMOTE_ADDR="192.0.2.10", **_bearer(issued.secret))
    client.get(ME, REMOTE_ADDR="192.0.2.99", **_bearer(issued.secret))
    [event] = AuditEvent.objects.filter(action="auth.token.used_new_ip")
    assert event.changes == {"previous_ip": "192.0.2.10", "ip": "192.0.2.99"}


def test_creating_a_token_needs_a_code_verified_session(client, operator_user):
    client.force_login(operator_user)
    response = client.post(TOKENS, {"name": "x"}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["code"] == "otp_required"
    assert not ApiToken.objects.exists()


def test_creating_a_token_needs_a_recent_reauthentication(client, operator_user):
    otp_force_login(client, operator_user)
    response = client.post(TOKENS, {"name": "x"}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["code"] == "reauthentication_required"
    assert "/account/reauthenticate/?next=%2Faccount%2F" in response.json()["detail"]
    assert not ApiToken.objects.exists()


def test_expired_tokens_are_flagged_once_in_the_audit_trail(viewer_user):
    from apps.accounts.tasks import tokens_flag_expired

    expired = _issue(viewer_user)
    expired.token.expires = timezone.now() - timedelta(minutes=5)
    expired.token.save()
    _issue(viewer_user)  # still valid
    assert tokens_flag_expired.apply().get() == "Flagged 1 expired token."
    assert tokens_flag_expired.apply().get() == "Flagged 0 expired tokens."
    [event] = AuditEvent.objects.filter(action="auth.token.expired")
    assert event.object_id == str(expired.token.pk)
