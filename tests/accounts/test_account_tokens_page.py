"""Tokens on the account page: listed, created behind re-authentication with the secret shown once, revoked."""

import re
import time

import pytest

from apps.accounts.models import ApiToken
from apps.accounts.sudo import SUDO_SESSION_KEY, SUDO_USER_SESSION_KEY
from apps.accounts.tokens import token_create
from tests.mfa import otp_force_login, sudo_force_login

pytestmark = pytest.mark.django_db


def test_account_page_lists_the_users_tokens_without_secrets(client, operator_user):
    issued = token_create(owner=operator_user, name="nightly export", scopes=["read"], expires_in_days=10)
    client.force_login(operator_user)
    page = client.get("/account/").content.decode()
    assert "nightly export" in page
    assert issued.token.prefix in page
    assert issued.secret not in page


def test_creating_a_token_asks_for_reauthentication_first(client, operator_user):
    otp_force_login(client, operator_user)
    response = client.get("/account/tokens/new/")
    assert response.status_code == 302
    assert response.url.startswith("/account/reauthenticate/?next=")


def test_creating_a_token_needs_an_authenticator(client, operator_user):
    client.force_login(operator_user)
    session = client.session
    session[SUDO_SESSION_KEY], session[SUDO_USER_SESSION_KEY] = time.time(), str(operator_user.pk)
    session.save()
    response = client.post("/account/tokens/new/", {"name": "x", "expires_in_days": "5"})
    assert response.status_code == 302
    assert not ApiToken.objects.exists()


def test_token_created_on_the_page_is_shown_once(client, operator_user):
    sudo_force_login(client, operator_user)
    response = client.post("/account/tokens/new/", {"name": "ci", "scopes": ["read", "write"], "expires_in_days": "7"})
    assert response.status_code == 200
    token = ApiToken.objects.get()
    secret = response.content.decode().split('id="token-secret">')[1].split("<")[0]
    assert secret.startswith(token.prefix + "_")
    assert token.scopes == ["read", "write"]
    assert secret not in client.get("/account/").content.decode()
    assert client.get("/api/v1/accounts/me/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200


def test_bad_expiry_on_the_page_says_the_limit(client, operator_user, settings):
    settings.API_TOKEN_MAX_DAYS = 30
    sudo_force_login(client, operator_user)
    response = client.post("/account/tokens/new/", {"name": "ci", "expires_in_days": "90"})
    assert response.status_code == 400
    assert "expires_in_days must be from 1 to 30." in response.content.decode()
    assert not ApiToken.objects.exists()


def test_revoking_from_the_page_only_works_on_own_tokens(client, operator_user, viewer_user):
    mine = token_create(owner=operator_user, name="mine", scopes=["read"], expires_in_days=1).token
    theirs = token_create(owner=viewer_user, name="theirs", scopes=["read"], expires_in_days=1).token
    client.force_login(operator_user)
    assert client.post(f"/account/tokens/{theirs.pk}/revoke/").status_code == 404
    assert client.post(f"/account/tokens/{mine.pk}/revoke/").status_code == 302
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.revoked is not None
    assert theirs.revoked is None


def test_admin_user_list_counts_live_tokens_and_revokes_them_all(client, superuser, operator_user):
    for name in ("a", "b"):
        token_create(owner=operator_user, name=name, scopes=["read"], expires_in_days=1)
    otp_force_login(client, superuser)
    page = client.get("/admin/accounts/user/").content.decode()
    assert re.search(r'class="field-token_count[^>]*>2<', page)
    response = client.post(
        "/admin/accounts/user/", {"action": "revoke_tokens", "_selected_action": [str(operator_user.pk)]}
    )
    assert response.status_code == 302
    assert not ApiToken.objects.filter(owner=operator_user, revoked__isnull=True).exists()
    assert re.search(r'class="field-token_count[^>]*>0<', client.get("/admin/accounts/user/").content.decode())
