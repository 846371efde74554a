"""Single sign-on through a real OpenID Connect provider (tests/oidc_provider, npm's oidc-provider) on 127.0.0.1.

The portal side runs in Django's test client; the provider's login and consent pages are driven over real HTTP.
The browser test in test_oidc_browser.py signs in through the provider's page in Chromium.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY

from apps.accounts.models import OidcIdentity, ProviderMfaDevice, User
from apps.accounts.password_reset import password_reset_users
from apps.accounts.sudo import SUDO_SESSION_KEY
from apps.accounts.tokens import TokenRejected, token_check, token_create
from apps.audit.models import AuditEvent
from project.settings.env import Environment
from project.settings.oidc import oidc_settings
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.helpers import clean_environment, free_port, manage
from tests.oidc import (
    TEST_CLIENT_ORIGIN,
    portal_configure,
    provider_login,
    provider_start,
    provider_stop,
    sign_in,
    user,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("roles")]

USERS = {
    "ada": user(["ops-admins", "unrelated"], amr=["pwd", "otp"], email="ada@example.test"),
    "oli": user(["ops-operators"]),
    "pat": user(["ops-admins"], amr=["pwd"]),
}


@pytest.fixture
def provider(settings):
    running = provider_start(portal_origins=[TEST_CLIENT_ORIGIN], users=USERS)
    portal_configure(settings, running.issuer)
    yield running
    provider_stop(running)


def test_first_sign_in_creates_the_user_with_the_role_of_their_group(client, provider):
    _, response = sign_in(client, username="oli", next_url="/account/")
    assert response.status_code == 302
    assert response["Location"] == "/account/"
    identity = OidcIdentity.objects.select_related("user").get(issuer=provider.issuer, subject="oli")
    assert identity.user.role_names == ["operator"]
    assert not identity.user.has_usable_password()
    assert client.get("/account/").status_code == 200


def test_a_user_removed_from_a_group_loses_the_role_at_the_next_sign_in_and_it_is_audited(client, provider):
    sign_in(client, username="ada")
    ada = OidcIdentity.objects.get(subject="ada").user
    assert ada.role_names == ["admin"]
    assert ada.is_staff
    client.post("/accounts/logout/")

    provider.users_set({**USERS, "ada": user(["ops-operators"], amr=["pwd", "otp"])})
    sign_in(client, username="ada")
    ada.refresh_from_db()
    assert ada.role_names == ["operator"]
    assert not ada.is_staff
    event = AuditEvent.objects.filter(action="accounts.privileges.changed", object_id=str(ada.pk)).latest("id")
    assert event.changes["before"]["roles"] == ["admin"]
    assert event.changes["after"]["roles"] == ["operator"]
    assert "roles:admin" in event.changes["revoked"]


def test_users_are_matched_by_subject_never_by_email(client, provider):
    same_address = UserFactory(username="ada-local", email="ada@example.test")
    sign_in(client, username="ada")
    assert OidcIdentity.objects.get(subject="ada").user != same_address
    assert not same_address.groups.exists()


def test_without_create_users_an_unknown_subject_is_refused(client, provider, settings):
    settings.OIDC_CREATE_USERS = False
    _, response = sign_in(client, username="oli")
    assert response.status_code == 403
    assert b"No Opsdeck account is linked" in response.content
    assert not User.objects.filter(oidc_identities__subject="oli").exists()


def test_a_wrong_state_is_refused(client, provider):
    start = client.get("/accounts/oidc/login/")
    callback = provider_login(requests.Session(), start["Location"], username="oli")
    forged = callback.replace("state=", "state=x")
    response = client.get(forged.removeprefix(TEST_CLIENT_ORIGIN))
    assert response.status_code == 400
    assert b"could not be verified" in response.content
    assert not client.session.get("_auth_user_id")


def test_a_replayed_code_is_refused(client, provider):
    callback, response = sign_in(client, username="oli")
    assert response.status_code == 302
    other = Client()
    # The same answer again: its state was used up.
    assert other.get(callback.removeprefix(TEST_CLIENT_ORIGIN)).status_code == 400
    # The same code with a state of a new sign-in: the provider refuses a code it already exchanged.
    start = other.get("/accounts/oidc/login/")
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]
    code = parse_qs(urlsplit(callback).query)["code"][0]
    response = other.get("/accounts/oidc/callback/", {"code": code, "state": state})
    assert response.status_code == 400
    assert b"refused the sign-in code" in response.content
    assert not other.session.get("_auth_user_id")


def test_an_id_token_signed_by_another_key_is_refused(client, provider):
    provider.forge(True)
    _, response = sign_in(client, username="ada")
    assert response.status_code == 400
    assert b"JWS token verification failed" in response.content
    assert not client.session.get("_auth_user_id")
    assert not OidcIdentity.objects.exists()


def test_a_provider_that_is_down_gives_a_clear_page_and_the_break_glass_admin_still_signs_in(client, settings):
    portal_configure(settings, f"http://127.0.0.1:{free_port()}", OIDC_ONLY=True, OIDC_BREAK_GLASS_USERS=["root"])
    UserFactory(username="root", is_staff=True, is_superuser=True)
    login_page = client.get("/accounts/login/")
    assert b"Sign in with Test SSO" in login_page.content  # the page never asked the provider
    response = client.get("/accounts/oidc/login/")
    assert response.status_code == 503
    text = response.content.decode()
    assert "Test SSO (127.0.0.1:" in text
    assert "Local sign-in with a password still works for the break-glass accounts" in text
    signed_in = client.post("/accounts/login/", {"username": "root", "password": DEFAULT_PASSWORD})
    assert signed_in.status_code == 302
    assert signed_in["Location"].startswith("/account/mfa/enroll/")  # the superuser's MFA rule, as always


def test_provider_mfa_counts_as_a_second_factor_for_the_admin(client, provider):
    _, response = sign_in(client, username="ada", next_url="/admin/")
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    device = ProviderMfaDevice.objects.get(user__oidc_identities__subject="ada")
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id


def test_without_provider_mfa_the_local_mfa_rule_applies(client, provider):
    _, response = sign_in(client, username="pat", next_url="/admin/")
    assert response["Location"] == "/admin/"
    assert DEVICE_ID_SESSION_KEY not in client.session
    answer = client.get("/admin/")
    assert answer.status_code == 302
    assert answer["Location"].startswith("/account/mfa/enroll/")


def test_oidc_only_refuses_the_password_form_except_for_break_glass_users(client, provider, settings):
    settings.OIDC_ONLY = True
    settings.OIDC_BREAK_GLASS_USERS = ["root"]
    UserFactory(username="oscar")
    UserFactory(username="root")
    refused = client.post("/accounts/login/", {"username": "oscar", "password": DEFAULT_PASSWORD})
    assert refused.status_code == 403
    assert "Sign-in with a password is turned off" in refused.content.decode()
    assert not client.session.get("_auth_user_id")
    allowed = client.post("/accounts/login/", {"username": "root", "password": DEFAULT_PASSWORD})
    assert allowed.status_code == 302


def test_under_oidc_only_only_break_glass_accounts_get_a_password_reset(db, settings):
    settings.OIDC_ONLY = True
    settings.OIDC_BREAK_GLASS_USERS = ["root"]
    UserFactory(username="oscar", email="oscar@example.test")
    root = UserFactory(username="root", email="root@example.test")

    assert password_reset_users(address="oscar@example.test") == [], "a password oscar may not use"
    assert password_reset_users(address="root@example.test") == [root]


def test_an_sso_only_user_gets_no_password_reset(client, provider):
    sign_in(client, username="ada")
    ada = OidcIdentity.objects.get(subject="ada").user
    assert ada.email == "ada@example.test"
    assert password_reset_users(address="ada@example.test") == []


def test_sso_user_renews_the_sudo_window_by_signing_in_at_the_provider_again(client, provider):
    session = requests.Session()
    sign_in(client, username="ada", session=session)
    assert SUDO_SESSION_KEY not in client.session
    to_provider = client.get("/account/reauthenticate/", {"next": "/account/"})
    assert to_provider.status_code == 302
    assert to_provider["Location"].startswith("/accounts/oidc/login/?reauth=1")
    start = client.get(to_provider["Location"])
    query = parse_qs(urlsplit(start["Location"]).query)
    assert query["prompt"] == ["login"]
    assert query["max_age"] == ["0"]
    callback = provider_login(session, start["Location"], username="ada")
    back = client.get(callback.removeprefix(TEST_CLIENT_ORIGIN))
    assert back["Location"] == "/account/"
    assert SUDO_SESSION_KEY in client.session


def test_logout_ends_the_session_at_the_provider_too(client, provider):
    sign_in(client, username="oli")
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"].startswith(f"{provider.issuer}/session/end?id_token_hint=")
    assert not client.session.get("_auth_user_id")


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"OIDC_ISSUER": "sso.example.com"}, "OIDC_ISSUER"),
        ({"OIDC_ISSUER": "https://sso.example.com"}, "OIDC_CLIENT_ID"),
        ({"OIDC_ROLE_MAP": "ops-admins=root"}, "OIDC_ROLE_MAP"),
        ({"OIDC_ROLE_MAP": "ops-admins"}, "OIDC_ROLE_MAP"),
        ({"OIDC_ONLY": "true"}, "OIDC_ONLY"),
        ({"OIDC_SCOPES": "email"}, "OIDC_SCOPES"),
    ],
)
def test_bad_sso_settings_name_the_variable(variables, named):
    with pytest.raises(ImproperlyConfigured, match=named):
        oidc_settings(Environment(variables))


def test_sso_is_off_without_an_issuer():
    assert oidc_settings(Environment({}))["OIDC_ENABLED"] is False


def test_provider_mfa_counts_as_enrolled_for_api_tokens_and_without_it_they_stay_suspended(client, provider):
    sign_in(client, username="ada")
    sign_in(Client(), username="pat")
    ada = OidcIdentity.objects.get(subject="ada").user
    pat = OidcIdentity.objects.get(subject="pat").user
    ada_token = token_create(owner=ada, name="CI", scopes=["read"], expires_in_days=30)
    pat_token = token_create(owner=pat, name="CI", scopes=["read"], expires_in_days=30)
    assert token_check(token_id=ada_token.token.pk).owner == ada
    with pytest.raises(TokenRejected, match="requires two-factor authentication"):
        token_check(token_id=pat_token.token.pk)


def test_the_portal_starts_while_the_provider_is_down(tmp_path):
    environment = clean_environment(
        OPSDECK_DATA_DIR=str(tmp_path),
        OIDC_ISSUER=f"http://127.0.0.1:{free_port()}",
        OIDC_CLIENT_ID="opsdeck",
        OIDC_CLIENT_SECRET="a-client-secret",
    )
    result = manage("check", environment=environment)
    assert result.returncode == 0, result.stderr


def test_without_a_role_map_sign_ins_leave_the_roles_given_in_opsdeck_alone(client, provider, settings):
    settings.OIDC_ROLE_MAP = {}
    sign_in(client, username="oli")
    oli = OidcIdentity.objects.get(subject="oli").user
    assert oli.role_names == []
    oli.groups.add(Group.objects.get(name="viewer"))
    client.post("/accounts/logout/")
    sign_in(client, username="oli")
    assert oli.role_names == ["viewer"]
