"""Sessions: a new key at sign-in, idle and absolute expiry, the list of active sessions and ending them."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client

from apps.accounts.models import UserSession
from apps.accounts.tasks import session_clear_expired
from apps.audit.models import AuditEvent
from apps.core.models import MaintenanceRun
from tests.helpers import clean_environment, manage
from tests.mfa import totp_code, totp_device_create

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
OTP_STEP = "/accounts/login/code/"
ACCOUNT = "/account/"
START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def _session_key(client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _sign_in(user, password, *, user_agent: str = FIREFOX, remote_addr: str = "127.0.0.1") -> Client:
    """A browser signed in through the real password step (the user has no authenticator)."""
    client = Client(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=remote_addr)
    response = client.post(LOGIN, {"username": user.username, "password": password})
    assert response.status_code == 302, response.content
    return client


def _is_signed_in(client) -> bool:
    response = client.get(ACCOUNT)
    if response.status_code == 302:
        assert response.url.startswith(LOGIN)
        return False
    assert response.status_code == 200
    return True


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


# --- a new session key at sign-in


def test_password_sign_in_replaces_the_session_key(client, operator_user, password):
    anonymous = client.session
    anonymous["visited"] = True
    anonymous.save()
    before = _session_key(client)

    response = client.post(LOGIN, {"username": operator_user.username, "password": password})

    assert response.status_code == 302
    assert _session_key(client) != before
    assert not Session.objects.filter(session_key=before).exists()
    assert _is_signed_in(client)


def test_code_step_replaces_the_key_of_the_password_step_session(client, operator_user, password):
    device = totp_device_create(operator_user)
    client.post(LOGIN, {"username": operator_user.username, "password": password})
    pending = _session_key(client)

    client.post(OTP_STEP, {"code": totp_code(device.key)})

    assert _session_key(client) != pending
    assert not Session.objects.filter(session_key=pending).exists()
    assert _is_signed_in(client)


# --- idle expiry


def test_idle_session_is_signed_out_after_idle_minutes_and_recorded(operator_user, password, clock):
    browser = _sign_in(operator_user, password)
    assert _is_signed_in(browser)

    clock.shift(timedelta(minutes=settings.SESSION_IDLE_MINUTES + 1))
    response = browser.get(ACCOUNT)

    assert response.status_code == 302
    assert response.url == f"{LOGIN}?next={ACCOUNT}"
    assert not _is_signed_in(browser)  # and stays signed out
    [expired] = _events("auth.session.expired")
    assert expired.actor_username == operator_user.username
    assert expired.changes["reason"] == "idle"
    assert expired.changes["limit_minutes"] == settings.SESSION_IDLE_MINUTES
    assert _events("auth.logout") == []  # the user did not sign out
    assert not UserSession.objects.filter(user=operator_user).exists()


def test_idle_limit_follows_the_setting(operator_user, password, clock, settings):
    settings.SESSION_IDLE_MINUTES = 5
    browser = _sign_in(operator_user, password)
    clock.shift(timedelta(minutes=4))
    assert _is_signed_in(browser)
    clock.shift(timedelta(minutes=6))
    assert not _is_signed_in(browser)


def test_activity_within_the_idle_window_keeps_the_session(operator_user, password, clock):
    browser = _sign_in(operator_user, password)
    for _ in range(6):  # two hours in 20-minute steps, each shorter than the idle limit
        clock.shift(timedelta(minutes=20))
        assert _is_signed_in(browser)
    assert _events("auth.session.expired") == []
    user_session = UserSession.objects.get(user=operator_user)
    assert user_session.last_seen == START + timedelta(minutes=120)


def test_api_request_with_an_idle_session_is_anonymous(operator_user, password, clock):
    browser = _sign_in(operator_user, password)
    assert browser.get("/api/v1/").status_code == 200
    clock.shift(timedelta(minutes=settings.SESSION_IDLE_MINUTES + 1))
    assert browser.get("/api/v1/").status_code in (401, 403)
    assert len(_events("auth.session.expired")) == 1


def test_activity_is_written_at_most_once_a_minute(operator_user, password, clock):
    browser = _sign_in(operator_user, password)
    key = _session_key(browser)
    stored = Session.objects.get(session_key=key).session_data

    clock.shift(timedelta(seconds=30))
    browser.get(ACCOUNT)
    assert Session.objects.get(session_key=key).session_data == stored  # no session save
    assert UserSession.objects.get(session_key=key).last_seen == START

    clock.shift(timedelta(seconds=31))
    browser.get(ACCOUNT)
    assert UserSession.objects.get(session_key=key).last_seen == START + timedelta(seconds=61)


# --- absolute expiry


def test_session_ends_after_absolute_hours_even_with_activity(operator_user, password, clock):
    browser = _sign_in(operator_user, password)
    key = _session_key(browser)
    deadline = START + timedelta(hours=settings.SESSION_ABSOLUTE_HOURS)
    now = START
    while now + timedelta(minutes=25) < deadline:
        now += timedelta(minutes=25)
        clock.move_to(now)
        assert _is_signed_in(browser)
        # Activity saves the session, but never pushes its expiry back.
        assert Session.objects.get(session_key=key).expire_date == deadline

    clock.move_to(deadline + timedelta(minutes=1))
    assert not _is_signed_in(browser)


# --- the list of active sessions, and ending them


def test_account_page_lists_both_sessions_of_the_user(operator_user, password):
    laptop = _sign_in(operator_user, password, user_agent=FIREFOX, remote_addr="198.51.100.7")
    phone = _sign_in(operator_user, password, user_agent=SAFARI_IPHONE, remote_addr="203.0.113.9")

    page = laptop.get(ACCOUNT).content.decode()

    assert 'id="sessions"' in page
    assert "Firefox on Linux" in page
    assert "198.51.100.7" in page
    assert "Safari on iOS" in page
    assert "203.0.113.9" in page
    assert page.count("This session") == 1
    phone_row = UserSession.objects.get(session_key=_session_key(phone))
    assert f'action="/account/sessions/{phone_row.pk}/end/"' in page
    laptop_row = UserSession.objects.get(session_key=_session_key(laptop))
    assert f'action="/account/sessions/{laptop_row.pk}/end/"' not in page


def test_ending_the_other_session_signs_that_browser_out_and_is_recorded(operator_user, password):
    laptop = _sign_in(operator_user, password, user_agent=FIREFOX)
    phone = _sign_in(operator_user, password, user_agent=SAFARI_IPHONE, remote_addr="203.0.113.9")
    phone_row = UserSession.objects.get(session_key=_session_key(phone))

    response = laptop.post(f"/account/sessions/{phone_row.pk}/end/", follow=True)

    assert response.status_code == 200
    assert "Ended the session of Safari on iOS from 203.0.113.9" in response.content.decode()
    assert not _is_signed_in(phone)
    assert _is_signed_in(laptop)
    assert not Session.objects.filter(session_key=phone_row.session_key).exists()
    assert not UserSession.objects.filter(pk=phone_row.pk).exists()
    [ended] = _events("auth.session.ended")
    assert ended.actor_username == operator_user.username
    assert (ended.object_type, ended.object_id) == ("accounts.usersession", str(phone_row.pk))
    assert ended.changes["ip"] == "203.0.113.9"
    assert phone_row.session_key not in str(ended.changes)  # the key is a credential


def test_user_cannot_end_another_users_session(operator_user, viewer_user, password):
    operator = _sign_in(operator_user, password)
    viewer = _sign_in(viewer_user, password)
    viewer_row = UserSession.objects.get(user=viewer_user)

    response = operator.post(f"/account/sessions/{viewer_row.pk}/end/")

    assert response.status_code == 404
    assert _is_signed_in(viewer)
    assert UserSession.objects.filter(pk=viewer_row.pk).exists()
    assert _events("auth.session.ended") == []


def test_ending_the_current_session_from_the_list_is_refused(operator_user, password):
    laptop = _sign_in(operator_user, password)
    own_row = UserSession.objects.get(session_key=_session_key(laptop))

    response = laptop.post(f"/account/sessions/{own_row.pk}/end/", follow=True)

    assert "This is the session you are using: sign out to end it." in response.content.decode()
    assert _is_signed_in(laptop)


def test_ending_a_session_needs_a_post(operator_user, password):
    laptop = _sign_in(operator_user, password)
    phone = _sign_in(operator_user, password, user_agent=SAFARI_IPHONE)
    phone_row = UserSession.objects.get(session_key=_session_key(phone))
    assert laptop.get(f"/account/sessions/{phone_row.pk}/end/").status_code == 405
    assert _is_signed_in(phone)


def test_ending_a_session_checks_csrf(operator_user, password):
    laptop = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=FIREFOX)
    laptop.force_login(operator_user)
    phone = _sign_in(operator_user, password, user_agent=SAFARI_IPHONE)
    phone_row = UserSession.objects.get(session_key=_session_key(phone))
    assert laptop.post(f"/account/sessions/{phone_row.pk}/end/").status_code == 403
    assert _is_signed_in(phone)


def test_sign_out_everywhere_else_keeps_only_this_session(operator_user, viewer_user, password):
    laptop = _sign_in(operator_user, password)
    phone = _sign_in(operator_user, password, user_agent=SAFARI_IPHONE, remote_addr="203.0.113.9")
    tablet = _sign_in(operator_user, password, remote_addr="192.0.2.44")
    someone_else = _sign_in(viewer_user, password)

    response = laptop.post("/account/sessions/end-others/", follow=True)

    assert "Signed out 2 other sessions." in response.content.decode()
    assert _is_signed_in(laptop)
    assert not _is_signed_in(phone)
    assert not _is_signed_in(tablet)
    assert _is_signed_in(someone_else)
    assert list(UserSession.objects.filter(user=operator_user).values_list("session_key", flat=True)) == [
        _session_key(laptop)
    ]
    [ended] = _events("auth.session.ended")
    assert ended.changes["scope"] == "all_others"
    assert ended.changes["count"] == 2
    assert ended.changes["ips"] == ["192.0.2.44", "203.0.113.9"]


def test_sign_out_everywhere_else_without_other_sessions_records_nothing(operator_user, password):
    laptop = _sign_in(operator_user, password)
    response = laptop.post("/account/sessions/end-others/", follow=True)
    assert "There were no other sessions to sign out." in response.content.decode()
    assert _events("auth.session.ended") == []


def test_signing_out_removes_the_session_from_the_list(operator_user, password):
    laptop = _sign_in(operator_user, password)
    phone = _sign_in(operator_user, password, user_agent=SAFARI_IPHONE)
    phone.post("/accounts/logout/")
    assert list(UserSession.objects.filter(user=operator_user).values_list("session_key", flat=True)) == [
        _session_key(laptop)
    ]


def test_staff_user_with_verified_session_sees_the_sessions_section(admin_user, otp_login):
    browser = Client()
    otp_login(browser, admin_user)
    page = browser.get(ACCOUNT)
    assert page.status_code == 200
    assert "This session" in page.content.decode()


def test_idle_sessions_are_not_listed(operator_user, password, clock):
    laptop = _sign_in(operator_user, password)
    _sign_in(operator_user, password, user_agent=SAFARI_IPHONE)
    clock.shift(timedelta(minutes=20))
    laptop.get(ACCOUNT)
    clock.shift(timedelta(minutes=20))  # the phone has now been idle for 40 minutes
    page = laptop.get(ACCOUNT).content.decode()
    assert "Safari on iOS" not in page


# --- maintenance


def test_maintenance_removes_list_entries_whose_session_is_gone(operator_user, password):
    laptop = _sign_in(operator_user, password)
    UserSession.objects.create(user=operator_user, session_key="gone" * 8, ip="192.0.2.1")

    message = session_clear_expired.apply().get()

    assert message == "Deleted 0 expired sessions. Removed 1 stale entry of the active-session list."
    assert list(UserSession.objects.values_list("session_key", flat=True)) == [_session_key(laptop)]
    assert MaintenanceRun.objects.get().message == message


def test_maintenance_removes_list_entries_of_expired_sessions(operator_user, password, clock):
    _sign_in(operator_user, password)
    clock.shift(timedelta(hours=settings.SESSION_ABSOLUTE_HOURS, minutes=1))
    message = session_clear_expired.apply().get()
    assert message == "Deleted 1 expired session. Removed 1 stale entry of the active-session list."
    assert not UserSession.objects.exists()


# --- settings


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"SESSION_IDLE_MINUTES": "soon"}, "SESSION_IDLE_MINUTES must be a whole number"),
        ({"SESSION_ABSOLUTE_HOURS": "0"}, "SESSION_ABSOLUTE_HOURS must be at least 1"),
        ({"SESSION_ABSOLUTE_HOURS": "1", "SESSION_IDLE_MINUTES": "90"}, "SESSION_IDLE_MINUTES (90) must not exceed"),
    ],
)
def test_bad_session_settings_stop_the_portal_naming_the_variable(tmp_path, variables, expected):
    result = manage("check", environment=clean_environment(OPSDECK_DATA_DIR=str(tmp_path), **variables))
    assert result.returncode != 0
    assert expected in result.stderr
