"""Privilege changes in the admin (roles, staff, superuser, another user's password) need a fresh second factor.

Written as an attacker holding a stolen administrator session whose sudo window has passed: the session is
signed in and OTP-verified, but the password and a current code were not given in the last minutes.
"""

import time

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from apps.accounts.sudo import SUDO_SESSION_KEY
from apps.audit.models import AuditEvent
from apps.core.choices import Role
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.mfa import otp_force_login, sudo_force_login, totp_code

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Tangerine-Orbit-Lantern-58"
REAUTHENTICATE = "/account/reauthenticate/"


@pytest.fixture
def target(roles):
    return UserFactory(username="tom-target", roles=[Role.VIEWER])


@pytest.fixture
def stolen_client(client, roles, admin_user):
    """An administrator's OTP-verified session whose sudo window ended a second ago."""
    sudo_force_login(client, admin_user)
    session = client.session
    session[SUDO_SESSION_KEY] = time.time() - settings.SUDO_WINDOW_MINUTES * 60 - 1
    session.save()
    return client


@pytest.fixture
def sudo_client(client, roles, admin_user):
    sudo_force_login(client, admin_user)
    return client


def _change_url(user) -> str:
    return f"/admin/accounts/user/{user.pk}/change/"


def _password_url(user) -> str:
    return f"/admin/accounts/user/{user.pk}/password/"


def _form_data(user, **overrides) -> dict:
    """The admin's change form for ``user`` as the page fills it in, with ``overrides``."""
    joined = timezone.localtime(user.date_joined)
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "date_joined_0": joined.strftime("%Y-%m-%d"),
        "date_joined_1": joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
        "groups": [str(pk) for pk in user.groups.values_list("pk", flat=True)],
        "user_permissions": [str(pk) for pk in user.user_permissions.values_list("pk", flat=True)],
        "_save": "Save",
    }
    data.update({flag: "on" for flag in ("is_active", "is_staff", "is_superuser") if getattr(user, flag)})
    data.update(overrides)
    return data


def _privileges(user) -> tuple:
    user.refresh_from_db()
    return user.is_staff, user.is_superuser, sorted(user.groups.values_list("name", flat=True)), user.email


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def _role_pk(role: str) -> str:
    return str(Group.objects.get(name=role).pk)


GRANTS = {
    "superuser": {"is_superuser": "on"},
    "a role": {"groups": "ADMIN"},
    "staff": {"is_staff": "on"},
    "role and staff together": {"groups": "ADMIN", "is_staff": "on", "email": "tom@evil.test"},
}


def _grant(name: str, target) -> dict:
    overrides = dict(GRANTS[name])
    if overrides.get("groups") == "ADMIN":
        overrides["groups"] = [_role_pk(Role.VIEWER), _role_pk(Role.ADMIN)]
    return _form_data(target, **overrides)


# --- Outside the sudo window: refused, nothing saved


@pytest.mark.parametrize("grant", list(GRANTS))
def test_stolen_admin_session_past_sudo_window_cannot_grant_privileges(stolen_client, target, grant):
    before = _privileges(target)
    last_event = AuditEvent.objects.order_by("id").last().id

    response = stolen_client.post(_change_url(target), _grant(grant, target))

    assert response.status_code == 302
    assert response["Location"] == f"{REAUTHENTICATE}?next=%2Fadmin%2Faccounts%2Fuser%2F{target.pk}%2Fchange%2F"
    assert _messages(response) == [
        "Nothing was saved: changing roles, permissions, staff or superuser status needs your password and a "
        "fresh authenticator code. Confirm them here, then make the change again."
    ]
    assert _privileges(target) == before  # nothing half-saved: not the role, not the flag, not the email
    assert not AuditEvent.objects.filter(action="accounts.privileges.changed").exists()
    written = AuditEvent.objects.filter(id__gt=last_event, object_id=str(target.pk))
    assert not written.filter(action__in=["accounts.privileges.changed", "accounts.user.changed"]).exists()


def test_stolen_admin_session_cannot_revoke_a_role_either(stolen_client, target):
    response = stolen_client.post(_change_url(target), _form_data(target, groups=[]))

    assert response.status_code == 302
    assert response["Location"].startswith(REAUTHENTICATE)
    assert _privileges(target)[2] == [Role.VIEWER]


def test_refusal_message_shows_on_the_reauthentication_page(stolen_client, target):
    response = stolen_client.post(_change_url(target), _grant("superuser", target), follow=True)

    page = response.content.decode()
    assert response.redirect_chain[-1][0].startswith(REAUTHENTICATE)
    assert "Nothing was saved: changing roles, permissions, staff or superuser status" in page
    assert 'name="code"' in page  # the page asks for the authenticator code, not only the password


def test_edit_without_privilege_change_is_saved_outside_the_window(stolen_client, target):
    response = stolen_client.post(_change_url(target), _form_data(target, email="tom@example.test"))

    assert response.status_code == 302
    assert response["Location"] == "/admin/accounts/user/"
    assert _privileges(target) == (False, False, [Role.VIEWER], "tom@example.test")
    assert not AuditEvent.objects.filter(action="accounts.privileges.changed").exists()


# --- Inside the sudo window: saved through the service, audited with before and after


def test_password_and_fresh_code_then_grant_is_saved_and_audited_with_before_and_after(
    stolen_client, admin_user, target
):
    device = admin_user.totpdevice_set.get()
    refused = stolen_client.post(_change_url(target), _grant("role and staff together", target))
    confirmed = stolen_client.post(refused["Location"], {"password": DEFAULT_PASSWORD, "code": totp_code(device.key)})
    assert confirmed["Location"] == _change_url(target)

    response = stolen_client.post(_change_url(target), _grant("role and staff together", target))

    assert response.status_code == 302
    assert response["Location"] == "/admin/accounts/user/"
    assert _privileges(target) == (True, False, sorted([Role.ADMIN, Role.VIEWER]), "tom@evil.test")
    event = AuditEvent.objects.get(action="accounts.privileges.changed")
    assert event.actor_username == admin_user.username
    assert event.object_id == str(target.pk)
    assert event.changes["before"] == {
        "is_staff": False,
        "is_superuser": False,
        "roles": [Role.VIEWER],
        "permissions": [],
    }
    assert event.changes["after"] == {
        "is_staff": True,
        "is_superuser": False,
        "roles": sorted([Role.ADMIN, Role.VIEWER]),
        "permissions": [],
    }
    assert event.changes["granted"] == ["is_staff", f"roles:{Role.ADMIN}"]
    assert event.changes["revoked"] == []


def test_revoking_superuser_in_the_window_is_audited_as_revoked(sudo_client, target):
    target.is_superuser = True
    target.save()

    response = sudo_client.post(_change_url(target), _form_data(target, is_superuser=""))

    assert response.status_code == 302
    assert _privileges(target)[:2] == (False, False)
    event = AuditEvent.objects.get(action="accounts.privileges.changed")
    assert event.changes["revoked"] == ["is_superuser"]
    assert event.changes["before"]["is_superuser"] is True
    assert event.changes["after"]["is_superuser"] is False


# --- Another user's password through the admin's password form


def _password_form(password: str = NEW_PASSWORD) -> dict:
    return {"usable_password": "true", "password1": password, "password2": password}


def test_stolen_admin_session_past_sudo_window_cannot_set_another_users_password(stolen_client, target):
    response = stolen_client.post(_password_url(target), _password_form())

    assert response.status_code == 302
    assert response["Location"] == f"{REAUTHENTICATE}?next=%2Fadmin%2Faccounts%2Fuser%2F{target.pk}%2Fpassword%2F"
    assert _messages(response) == [
        "Nothing was saved: setting a password needs your password and a fresh authenticator code. "
        "Confirm them here, then make the change again."
    ]
    target.refresh_from_db()
    assert target.check_password(DEFAULT_PASSWORD)
    assert not target.check_password(NEW_PASSWORD)
    assert not AuditEvent.objects.filter(action="accounts.password.changed").exists()


def test_password_page_outside_the_window_sends_to_reauthentication_first(stolen_client, target):
    response = stolen_client.get(_password_url(target))

    assert response.status_code == 302
    assert response["Location"].startswith(REAUTHENTICATE)


def test_setting_another_users_password_in_the_window_signs_them_out_and_audits_without_the_password(
    sudo_client, admin_user, target
):
    victim_browser = Client()
    otp_force_login(victim_browser, target)
    assert victim_browser.get("/account/").status_code == 200
    admin_key = sudo_client.session.session_key

    response = sudo_client.post(_password_url(target), _password_form())

    assert response.status_code == 302
    assert response["Location"] == _change_url(target)
    target.refresh_from_db()
    assert target.check_password(NEW_PASSWORD)
    assert victim_browser.get("/account/").status_code == 302  # signed out everywhere
    assert sudo_client.get("/admin/").status_code == 200  # the administrator stays signed in
    assert sudo_client.session.session_key != admin_key  # ... with a new session key
    assert admin_user.user_sessions.filter(session_key=sudo_client.session.session_key).exists()
    event = AuditEvent.objects.get(action="accounts.password.changed")
    assert event.actor_username == admin_user.username
    assert event.object_id == str(target.pk)
    assert event.changes == {"by": "administrator", "usable": True, "signed_out": 1}
    for row in AuditEvent.objects.all():
        assert NEW_PASSWORD not in row.changes_text
        assert target.password not in row.changes_text


# --- What a role may do is every holder's privilege


def _role_form(role: Group, permissions) -> dict:
    return {"name": role.name, "permissions": [permission.pk for permission in permissions]}


def test_stolen_session_cannot_widen_a_role(stolen_client, roles):
    viewer = Group.objects.get(name=Role.VIEWER)
    before = set(viewer.permissions.values_list("pk", flat=True))
    everything = Permission.objects.all()

    response = stolen_client.post(f"/admin/auth/group/{viewer.pk}/change/", _role_form(viewer, everything))

    assert response.status_code == 302
    assert response["Location"].startswith(REAUTHENTICATE)
    assert set(viewer.permissions.values_list("pk", flat=True)) == before


@pytest.mark.parametrize("how", ["delete_view", "add_view"])
def test_stolen_session_cannot_create_or_delete_a_role(stolen_client, roles, how):
    viewer = Group.objects.get(name=Role.VIEWER)
    roles_before = Group.objects.count()

    if how == "delete_view":
        response = stolen_client.post(f"/admin/auth/group/{viewer.pk}/delete/", {"post": "yes"})
    else:
        response = stolen_client.post("/admin/auth/group/add/", {"name": "shadow-admins", "permissions": []})

    assert response.status_code == 302
    assert response["Location"].startswith(REAUTHENTICATE)
    assert Group.objects.count() == roles_before


def test_role_changes_inside_the_window_are_saved(sudo_client, roles):
    viewer = Group.objects.get(name=Role.VIEWER)
    kept = list(viewer.permissions.all())[:2]

    response = sudo_client.post(f"/admin/auth/group/{viewer.pk}/change/", _role_form(viewer, kept))

    assert response.status_code == 302, response.content
    assert set(viewer.permissions.all()) == set(kept)
