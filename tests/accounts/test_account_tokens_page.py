"""Tokens on the account page: listed, created behind re-authentication with the secret shown once, revoked."""

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

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
    response = client.post("/account/tokens/new/", {"name": "x", "expires_on": _in_days(5)})
    assert response.status_code == 302
    assert not ApiToken.objects.exists()


def _in_days(days: int) -> str:
    return (timezone.now().date() + timedelta(days=days)).isoformat()


def test_token_created_on_the_page_is_shown_once_after_a_redirect(client, operator_user):
    sudo_force_login(client, operator_user)
    response = client.post(
        "/account/tokens/new/", {"name": "ci", "scopes": ["read", "write"], "expires_on": _in_days(7)}
    )
    assert response.status_code == 302
    assert response.url == "/account/tokens/created/"
    token = ApiToken.objects.get()
    assert token.scopes == ["read", "write"]
    assert (token.expires - timezone.now()).days == 6  # seven days ahead, less the seconds since

    page = client.get(response.url).content.decode()
    secret = page.split('id="token-secret" class="secret">')[1].split("<")[0]
    assert secret.startswith(token.prefix + "_")
    assert f'curl -H "Authorization: Bearer {secret}" http://testserver/api/v1/' in page
    assert client.get("/api/v1/accounts/me/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200

    again = client.get(response.url)
    assert again.status_code == 302
    assert again.url == "/account/"
    account = client.get("/account/").content.decode()
    assert "shown once and is gone" in account
    assert secret not in account
    assert ApiToken.objects.count() == 1


def test_the_form_offers_an_expiry_date_with_presets_within_the_limit_and_never_only_to_administrators(
    client, operator_user, admin_user, settings
):
    settings.API_TOKEN_MAX_DAYS, settings.API_TOKEN_DEFAULT_DAYS = 30, 90
    sudo_force_login(client, operator_user)
    page = client.get("/account/tokens/new/").content.decode()
    assert f'type="date" name="expires_on" id="id_expires_on" value="{_in_days(30)}"' in page
    assert f'min="{_in_days(1)}" max="{_in_days(30)}"' in page
    assert f'data-expiry-date="{_in_days(7)}">7 days<' in page
    assert f'data-expiry-date="{_in_days(30)}">30 days<' in page
    assert "90 days" not in page
    assert "never_expires" not in page

    sudo_force_login(client, admin_user)
    assert 'name="never_expires"' in client.get("/account/tokens/new/").content.decode()
    response = client.post("/account/tokens/new/", {"name": "forever", "never_expires": "1", "expires_on": ""})
    assert response.status_code == 302
    assert ApiToken.objects.get(owner=admin_user).expires is None


def test_never_expiring_tokens_are_refused_to_others_with_a_reason(client, operator_user):
    sudo_force_login(client, operator_user)
    response = client.post("/account/tokens/new/", {"name": "forever", "never_expires": "1"})
    assert response.status_code == 400
    assert "Only administrators may create tokens that never expire; set an expiry." in response.content.decode()
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize(
    ("expires_on", "says"),
    [
        ("", "Choose the day the token expires."),
        ("next week", "Choose the day the token expires."),
        (_in_days(0), "A token expires after 1 to at most 30 days."),
        (_in_days(31), "A token expires after 1 to at most 30 days."),
    ],
)
def test_bad_expiry_on_the_page_says_the_limit(client, operator_user, settings, expires_on, says):
    settings.API_TOKEN_MAX_DAYS = 30
    sudo_force_login(client, operator_user)
    response = client.post("/account/tokens/new/", {"name": "ci", "expires_on": expires_on})
    assert response.status_code == 400
    assert says in response.content.decode()
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
