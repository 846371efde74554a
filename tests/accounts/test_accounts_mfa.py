"""Two-step sign-in, MFA enrollment, recovery codes, re-authentication, lockout — and their audit events."""

from base64 import b32decode
from binascii import unhexlify
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.core.management import call_command
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.services import lockout_records_clear_expired
from apps.audit.models import AuditEvent
from tests.mfa import otp_force_login, totp_code, totp_device_create

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
OTP_STEP = "/accounts/login/code/"
START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)


def _actions(prefix: str = "") -> list[str]:
    return list(AuditEvent.objects.filter(action__startswith=prefix).order_by("id").values_list("action", flat=True))


def _password_step(client, user, password, next_url: str = ""):
    data = {"username": user.username, "password": password}
    if next_url:
        data["next"] = next_url
    return client.post(LOGIN, data)


@pytest.fixture
def device(operator_user):
    return totp_device_create(operator_user)


@pytest.fixture
def frozen():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


# --- two-step sign-in


def test_user_with_authenticator_is_signed_in_only_after_the_code(client, operator_user, password, device, frozen):
    response = _password_step(client, operator_user, password)
    assert response.status_code == 302
    assert response.url == f"{OTP_STEP}?next=%2Fdashboard%2F"
    assert "_auth_user_id" not in client.session
    assert client.get("/dashboard/").status_code == 302  # not signed in yet
    assert _actions("auth.login.succeeded") == []

    response = client.post(OTP_STEP, {"code": totp_code(device.key), "next": "/dashboard/"})
    assert response.status_code == 302
    assert response.url == "/dashboard/"
    assert client.get("/dashboard/").status_code == 200
    assert _actions("auth.login.succeeded") == ["auth.login.succeeded"]


def test_code_step_without_password_step_goes_back_to_sign_in(client):
    response = client.post(OTP_STEP, {"code": "123456"})
    assert response.status_code == 302
    assert response.url.startswith(LOGIN)


def test_used_totp_code_is_refused_again_within_its_window(client, operator_user, password, device, frozen):
    code = totp_code(device.key)
    _password_step(client, operator_user, password)
    assert client.post(OTP_STEP, {"code": code}).status_code == 302
    client.post("/accounts/logout/")

    _password_step(client, operator_user, password)
    response = client.post(OTP_STEP, {"code": code})
    assert response.status_code == 200
    assert "already used" in response.content.decode()
    assert "_auth_user_id" not in client.session
    device.refresh_from_db()
    assert device.last_t == int(START.timestamp()) // 30


def test_wrong_codes_are_throttled_and_audited(client, operator_user, password, device, frozen):
    _password_step(client, operator_user, password)
    assert (
        client.post(OTP_STEP, {"code": "000000" if totp_code(device.key) != "000000" else "111111"}).status_code == 200
    )
    # The right code is refused while the device is throttled after a wrong guess …
    response = client.post(OTP_STEP, {"code": totp_code(device.key)})
    assert "Too many wrong codes" in response.content.decode()
    # … and accepted once the delay (1 s after one failure, 2 s after two) has passed.
    frozen.shift(timedelta(seconds=31))
    assert client.post(OTP_STEP, {"code": totp_code(device.key)}).status_code == 302
    failed = AuditEvent.objects.filter(action="auth.otp.failed")
    assert failed.count() == 1  # a code sent while throttled is not even checked
    assert {event.actor for event in failed} == {operator_user}


def test_recovery_code_signs_in_once_only(client, operator_user, password):
    TOTPDevice.objects.all().delete()
    client.force_login(operator_user)
    enrollment = client.get("/account/mfa/enroll/")
    key = enrollment.context["manual_key"]
    device = TOTPDevice.objects.get(user=operator_user)
    assert unhexlify(device.key) == b32decode(key)
    client.post("/account/mfa/enroll/", {"code": totp_code(device.key)})
    codes = client.session["mfa_new_recovery_codes"]
    assert len(codes) == 10
    client.post("/accounts/logout/")

    _password_step(client, operator_user, password)
    assert client.post(OTP_STEP, {"code": codes[0].upper()}).status_code == 302
    event = AuditEvent.objects.get(action="mfa.recovery_code.used")
    assert event.changes == {"remaining": 9}
    client.post("/accounts/logout/")

    _password_step(client, operator_user, password)
    assert client.post(OTP_STEP, {"code": codes[0]}).status_code == 200
    assert "_auth_user_id" not in client.session
    assert StaticToken.objects.filter(device__user=operator_user).count() == 9


# --- enrollment


def test_enrollment_shows_qr_svg_and_key_and_confirms_only_with_a_correct_code(client, operator_user):
    client.force_login(operator_user)
    page = client.get("/account/mfa/enroll/").content.decode()
    assert "<svg" in page
    assert 'id="manual-key"' in page
    device = TOTPDevice.objects.get(user=operator_user)
    assert not device.confirmed

    response = client.post("/account/mfa/enroll/", {"code": "12345"})
    assert "not correct" in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed

    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=5), tick=False):
        response = client.post("/account/mfa/enroll/", {"code": totp_code(device.key)})
    assert response.status_code == 302
    assert response.url.startswith("/account/mfa/recovery-codes/")
    device.refresh_from_db()
    assert device.confirmed
    assert _actions("mfa.enrolled") == ["mfa.enrolled"]

    download = client.get("/account/mfa/recovery-codes/download/")
    assert download["Content-Disposition"] == 'attachment; filename="opsdeck-recovery-codes.txt"'
    codes = client.session["mfa_new_recovery_codes"]
    assert all(code in download.content.decode() for code in codes)
    assert all(code in client.get("/account/mfa/recovery-codes/").content.decode() for code in codes)
    # Shown once: after "I have saved these codes" they are gone.
    client.post("/account/mfa/recovery-codes/")
    assert client.get("/account/mfa/recovery-codes/download/").status_code == 302
    assert not any(code in client.get("/account/").content.decode() for code in codes)


def test_role_that_requires_mfa_is_held_in_enrollment_after_the_password(client, compliance_user, password):
    response = _password_step(client, compliance_user, password, next_url="/dashboard/")
    assert response.status_code == 302
    assert response.url == "/account/mfa/enroll/?next=%2Fdashboard%2F"
    for path in ("/dashboard/", "/account/", "/admin/"):
        assert client.get(path).url.startswith("/account/mfa/enroll/")
    api = client.get("/api/v1/me/")
    assert api.status_code == 403
    assert api.json()["code"] == "mfa_required"
    assert client.get("/account/mfa/enroll/").status_code == 200
    assert client.get("/health/ready").status_code in (200, 503)


def test_operator_without_authenticator_signs_in_with_the_password_only(client, operator_user, password):
    response = _password_step(client, operator_user, password)
    assert response.url == "/dashboard/"
    assert client.get("/account/").status_code == 200


def test_superuser_is_always_required_to_enroll(client, superuser, password, settings):
    settings.MFA_REQUIRED_ROLES = []
    _password_step(client, superuser, password)
    assert client.get("/dashboard/").url.startswith("/account/mfa/enroll/")


# --- admin


def test_admin_needs_an_otp_verified_session(client, superuser, otp_login):
    client.force_login(superuser)
    response = client.get("/admin/")
    assert response.status_code == 302
    client.logout()
    otp_login(client, superuser)
    assert client.get("/admin/").status_code == 200


def test_admin_login_page_is_the_two_step_login(client):
    page = client.get("/admin/login/?next=/admin/", follow=True).content.decode()
    assert 'action="/accounts/login/"' in page
    assert 'name="next" value="/admin/"' in page


def test_admin_user_list_shows_mfa_and_lockout(client, superuser, operator_user, otp_login, settings):
    otp_login(client, superuser)
    AccessAttempt.objects.create(
        username=operator_user.username, ip_address="10.0.0.1", user_agent="x", get_data="", post_data="",
        http_accept="", path_info="/", failures_since_start=settings.AXES_FAILURE_LIMIT,
    )  # fmt: skip
    response = client.get("/admin/accounts/user/")
    rows = {user.username: user for user in response.context["cl"].result_list}
    assert rows[superuser.username].mfa_enabled is True
    assert rows[operator_user.username].mfa_enabled is False
    assert rows[operator_user.username].locked_out is True
    assert rows[superuser.username].locked_out is False


def test_admin_unlock_clears_lockout_and_is_audited(client, superuser, operator_user, otp_login):
    otp_login(client, superuser)
    AccessAttempt.objects.create(
        username=operator_user.username, ip_address="10.0.0.1", user_agent="x", get_data="", post_data="",
        http_accept="", path_info="/", failures_since_start=9,
    )  # fmt: skip
    client.post("/admin/accounts/user/", {"action": "unlock", "_selected_action": [str(operator_user.pk)]})
    assert not AccessAttempt.objects.exists()
    event = AuditEvent.objects.get(action="auth.unlock")
    assert (event.actor, event.object_id) == (superuser, str(operator_user.pk))


def test_admin_deactivate_action(client, superuser, operator_user, otp_login):
    otp_login(client, superuser)
    client.post("/admin/accounts/user/", {"action": "deactivate", "_selected_action": [str(operator_user.pk)]})
    operator_user.refresh_from_db()
    assert not operator_user.is_active


def test_admin_reset_mfa_requires_reauthentication_and_is_audited(
    client, superuser, operator_user, otp_login, password
):
    admin_device = otp_login(client, superuser)
    totp_device_create(operator_user)
    action = {"action": "reset_mfa", "_selected_action": [str(operator_user.pk)]}
    with time_machine.travel(START, tick=False):
        response = client.post("/admin/accounts/user/", action)
        assert response.status_code == 302
        assert response.url.startswith("/account/reauthenticate/?next=%2Fadmin%2Faccounts%2Fuser%2F")
        assert TOTPDevice.objects.filter(user=operator_user).exists()

        response = client.post(
            "/account/reauthenticate/",
            {"password": password, "code": totp_code(admin_device.key), "next": "/admin/accounts/user/"},
        )
        assert response.url == "/admin/accounts/user/"
        client.post("/admin/accounts/user/", action)
    assert not TOTPDevice.objects.filter(user=operator_user).exists()
    event = AuditEvent.objects.get(action="mfa.removed")
    assert event.actor == superuser
    assert event.changes["by"] == "admin"


# --- sudo mode on the account page


def test_disabling_mfa_needs_a_fresh_password_and_code(client, operator_user, password, device):
    otp_force_login(client, operator_user)
    with time_machine.travel(START, tick=False) as traveller:
        response = client.get("/account/mfa/disable/")
        assert response.url == "/account/reauthenticate/?next=%2Faccount%2Fmfa%2Fdisable%2F"
        wrong = client.post("/account/reauthenticate/", {"password": "wrong", "code": totp_code(device.key)})
        assert "password is not correct" in wrong.content.decode()
        traveller.shift(timedelta(seconds=30))
        response = client.post(
            "/account/reauthenticate/",
            {"password": password, "code": totp_code(device.key), "next": "/account/mfa/disable/"},
        )
        assert response.url == "/account/mfa/disable/"
        assert client.get("/account/mfa/disable/").status_code == 200
        client.post("/account/mfa/disable/")
        assert not TOTPDevice.objects.filter(user=operator_user).exists()
        assert _actions("mfa.removed") == ["mfa.removed"]
        # Outside the window the page asks again.
        traveller.shift(timedelta(minutes=16))
        assert client.get("/account/mfa/recovery-codes/new/").url.startswith("/account/reauthenticate/")


def test_regenerating_recovery_codes_replaces_them_and_is_audited(client, operator_user, password, device, frozen):
    _password_step(client, operator_user, password)
    client.post(OTP_STEP, {"code": totp_code(device.key)})  # a fresh code opens the sudo window
    client.post("/account/mfa/recovery-codes/new/")
    codes = client.session["mfa_new_recovery_codes"]
    assert len(codes) == 10
    assert set(StaticToken.objects.filter(device__user=operator_user).values_list("token", flat=True)) == set(codes)
    assert _actions("mfa.recovery_codes.regenerated") == ["mfa.recovery_codes.regenerated"]


# --- lockout


def test_five_failures_lock_out_until_the_cool_off_has_passed(client, operator_user, password):
    with time_machine.travel(START, tick=False) as traveller:
        for _ in range(5):
            _password_step(client, operator_user, "wrong password")
        response = _password_step(client, operator_user, password)
        assert response.status_code == 429
        page = response.content.decode()
        assert "Sign-in locked" in page
        assert "2 Mar 2026, 09:15 UTC" in page
        assert _actions("auth.lockout") == ["auth.lockout"]

        traveller.shift(timedelta(minutes=14))
        assert _password_step(client, operator_user, password).status_code == 429

        traveller.shift(timedelta(minutes=1, seconds=1))
        response = _password_step(client, operator_user, password)
        assert response.status_code == 302
        assert response.url == "/dashboard/"
    assert not AccessAttempt.objects.filter(username=operator_user.username).exists()  # reset on success


def test_failed_codes_count_towards_the_lockout(client, operator_user, password, device):
    with time_machine.travel(START, tick=False) as traveller:
        for _ in range(2):
            _password_step(client, operator_user, "wrong password")
        _password_step(client, operator_user, password)
        for _ in range(3):
            traveller.shift(timedelta(seconds=20))  # past the OTP throttle delay
            response = client.post(OTP_STEP, {"code": "abcdefgh"})
        assert response.status_code == 429
        assert "Sign-in locked" in response.content.decode()
        assert _actions("auth.otp.failed") == ["auth.otp.failed"] * 3
        assert _actions("auth.lockout") == ["auth.lockout"]
        # The pending sign-in is gone, and the password alone is refused during the lockout.
        assert _password_step(client, operator_user, password).status_code == 429


def test_lockout_is_per_username_and_address(client, operator_user, viewer_user, password):
    for _ in range(5):
        _password_step(client, operator_user, "wrong password")
    assert _password_step(client, viewer_user, password).status_code == 302
    other_address = client.post(
        LOGIN, {"username": operator_user.username, "password": password}, REMOTE_ADDR="192.0.2.7"
    )
    assert other_address.status_code == 302


def test_locked_out_api_client_gets_429_json(client, operator_user):
    for _ in range(5):
        _password_step(client, operator_user, "wrong password")
    from django.test import RequestFactory

    from apps.accounts.lockout import lockout_response

    request = RequestFactory().post("/api/v1/auth/tokens/")
    response = lockout_response(request, None, {"username": operator_user.username})
    assert response.status_code == 429
    import json

    body = json.loads(response.content)
    assert body["code"] == "locked_out"
    assert body["detail"].endswith(f"until {body['locked_until']}.")
    assert datetime.fromisoformat(body["locked_until"]) > datetime.now(UTC) + timedelta(minutes=14)


def test_expired_lockout_records_are_removed_by_the_maintenance_task(client, operator_user):
    with time_machine.travel(START, tick=False) as traveller:
        _password_step(client, operator_user, "wrong password")
        assert AccessAttempt.objects.count() == 1
        traveller.shift(timedelta(minutes=16))
        assert lockout_records_clear_expired().startswith("Deleted 1 expired lockout record")
    assert not AccessAttempt.objects.exists()


def test_lockout_maintenance_is_in_the_beat_schedule():
    from django_celery_beat.models import PeriodicTask

    call_command("setup_periodic_tasks")
    assert PeriodicTask.objects.get(name="Clear expired lockouts").task == "maintenance.lockout_clear_expired"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("MFA_REQUIRED_ROLES", "admin,wizard"), ("AXES_FAILURE_LIMIT", "five"), ("SUDO_WINDOW_MINUTES", "0")],
)
def test_bad_mfa_and_lockout_settings_are_refused_naming_the_variable(tmp_path, variable, value):
    from tests.helpers import clean_environment, manage

    result = manage("check", environment=clean_environment(OPSDECK_DATA_DIR=str(tmp_path), **{variable: value}))
    assert result.returncode != 0
    assert variable in result.stderr
    assert "Traceback" not in result.stderr.splitlines()[-1]
