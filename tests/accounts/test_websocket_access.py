"""Websockets and API tokens apply the rules HTTP applies: MFA by role, session expiry, active account.

Written as the attacker tries it: the same session cookie or token that HTTP
refuses is presented to every websocket, at the handshake and while a socket
stays open.
"""

import time
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.sessions import ACTIVITY_KEY
from apps.core.choices import Role
from apps.core.consumers import UNAUTHENTICATED_CLOSE_CODE
from apps.core.services import live_event_publish, user_group_name
from apps.jobs.consumers import JobStreamConsumer
from apps.quantum.services import JobSpec, job_submit
from project.asgi import application
from tests.core.test_live_events import ORIGIN, _token_secret
from tests.mfa import otp_force_login, totp_device_create
from tests.quantum_circuits import ghz_qasm2

pytestmark = pytest.mark.django_db(transaction=True)
STREAMS = ["/ws/jobs/", "/ws/jobs/{job}/", "/ws/events/"]


def _cookie(client) -> tuple[bytes, bytes]:
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode())


def _password_only_cookie(client, user) -> tuple[bytes, bytes]:
    """A session signed in with the password alone: the first step of the sign-in, no second factor."""
    client.force_login(user)
    return _cookie(client)


def _bearer(secret: str) -> tuple[bytes, bytes]:
    return (b"authorization", f"Bearer {secret}".encode())


def _others_job(operator_user) -> int:
    return job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(3), name="not yours")).pk


def _handshake(path: str, header) -> tuple[bool, object]:
    async def scenario():
        communicator = WebsocketCommunicator(application, path, headers=[ORIGIN, header])
        result = await communicator.connect()
        await communicator.disconnect()
        return result

    return async_to_sync(scenario)()


def _closed_at_next_event(path: str, header, change, user) -> dict:
    """Open ``path``, make ``change`` (a function run in the database), publish an event the socket
    would carry, and return what the socket sends next."""

    async def scenario():
        communicator = WebsocketCommunicator(application, path, headers=[ORIGIN, header])
        connected, _ = await communicator.connect()
        assert connected, "the stream must open before the change"
        if path != "/ws/events/":
            await communicator.receive_json_from(timeout=5)  # the snapshot
        await sync_to_async(change)()
        await sync_to_async(live_event_publish)(group=user_group_name(user.pk), event="notice", payload={"n": 1})
        await sync_to_async(job_submit)(owner=user, spec=JobSpec(source=ghz_qasm2(2), name="after"))
        output = await communicator.receive_output(timeout=5)
        await communicator.disconnect()
        return output

    return async_to_sync(scenario)()


@pytest.mark.parametrize("stream", STREAMS)
def test_admin_without_mfa_cannot_open_any_stream_with_a_password_only_session(
    client, admin_user, operator_user, stream
):
    cookie = _password_only_cookie(client, admin_user)
    assert client.get("/api/v1/quantum/jobs/").json()["code"] == "mfa_required", "HTTP refuses the same session"

    path = stream.format(job=_others_job(operator_user))
    assert _handshake(path, cookie) == (False, UNAUTHENTICATED_CLOSE_CODE)


@pytest.mark.parametrize("stream", STREAMS)
def test_enrolled_admin_must_confirm_the_code_before_a_stream_opens(client, admin_user, operator_user, stream):
    totp_device_create(admin_user)
    cookie = _password_only_cookie(client, admin_user)
    assert client.get("/api/v1/quantum/jobs/").status_code == 403

    path = stream.format(job=_others_job(operator_user))
    assert _handshake(path, cookie) == (False, UNAUTHENTICATED_CLOSE_CODE)


@pytest.mark.parametrize("stream", STREAMS)
def test_otp_verified_admin_opens_every_stream(client, admin_user, operator_user, stream):
    otp_force_login(client, admin_user)
    path = stream.format(job=_others_job(operator_user))
    connected, _ = _handshake(path, _cookie(client))
    assert connected


def test_operator_without_mfa_still_opens_streams_with_a_password_session(client, operator_user):
    """Only roles in MFA_REQUIRED_ROLES need the second factor, on websockets as on HTTP."""
    connected, _ = _handshake("/ws/jobs/", _password_only_cookie(client, operator_user))
    assert connected


@pytest.mark.parametrize("stream", ["/ws/jobs/", "/ws/events/"])
def test_open_stream_closes_when_the_admins_mfa_is_reset(client, admin_user, monkeypatch, stream):
    monkeypatch.setattr(JobStreamConsumer, "recheck_seconds", 0)
    otp_force_login(client, admin_user)

    def reset_mfa():
        TOTPDevice.objects.filter(user=admin_user).delete()

    output = _closed_at_next_event(stream, _cookie(client), reset_mfa, admin_user)
    assert output == {"type": "websocket.close", "code": UNAUTHENTICATED_CLOSE_CODE}


@pytest.mark.parametrize("stream", ["/ws/jobs/", "/ws/events/"])
def test_open_stream_closes_when_the_operator_is_promoted_into_a_role_that_needs_mfa(
    client, operator_user, monkeypatch, stream
):
    """A promotion without re-sign-in leaves a session with no second factor: HTTP refuses it, so must the socket."""
    monkeypatch.setattr(JobStreamConsumer, "recheck_seconds", 0)
    cookie = _password_only_cookie(client, operator_user)

    def promote():
        operator_user.groups.add(Group.objects.get_or_create(name=Role.COMPLIANCE)[0])

    output = _closed_at_next_event(stream, cookie, promote, operator_user)
    assert output == {"type": "websocket.close", "code": UNAUTHENTICATED_CLOSE_CODE}
    assert client.get("/api/v1/quantum/jobs/").status_code == 403


@pytest.mark.parametrize("stream", ["/ws/jobs/", "/ws/events/"])
def test_open_stream_closes_when_the_user_signs_out_elsewhere(client, operator_user, monkeypatch, stream):
    monkeypatch.setattr(JobStreamConsumer, "recheck_seconds", 0)
    cookie = _password_only_cookie(client, operator_user)
    output = _closed_at_next_event(stream, cookie, client.logout, operator_user)
    assert output == {"type": "websocket.close", "code": UNAUTHENTICATED_CLOSE_CODE}


def _make_idle(client) -> None:
    session = client.session
    session[ACTIVITY_KEY] = time.time() - settings.SESSION_IDLE_MINUTES * 60 - 5
    session.save()


def test_idle_session_cannot_open_a_stream(client, operator_user):
    cookie = _password_only_cookie(client, operator_user)
    _make_idle(client)
    assert _handshake("/ws/jobs/", cookie) == (False, UNAUTHENTICATED_CLOSE_CODE)
    assert client.get("/api/v1/quantum/jobs/").status_code in (401, 403), "HTTP signs the idle session out too"


@pytest.mark.parametrize("stream", ["/ws/jobs/", "/ws/events/"])
def test_open_stream_closes_once_the_session_is_idle_too_long(client, operator_user, monkeypatch, stream):
    monkeypatch.setattr(JobStreamConsumer, "recheck_seconds", 0)
    cookie = _password_only_cookie(client, operator_user)
    output = _closed_at_next_event(stream, cookie, lambda: _make_idle(client), operator_user)
    assert output == {"type": "websocket.close", "code": UNAUTHENTICATED_CLOSE_CODE}


def test_session_past_its_absolute_expiry_cannot_open_a_stream(client, operator_user):
    cookie = _password_only_cookie(client, operator_user)
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )
    assert _handshake("/ws/events/", cookie) == (False, UNAUTHENTICATED_CLOSE_CODE)


# --- API tokens of users whose role requires MFA ---


def test_token_of_admin_without_mfa_is_refused_on_rest_and_websockets(api_client, admin_user):
    secret = _token_secret(admin_user)
    response = api_client.get("/api/v1/quantum/jobs/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 403
    assert "two-factor" in response.json()["detail"]
    for path in ("/ws/jobs/", "/ws/events/"):
        assert _handshake(path, _bearer(secret))[0] is False


def test_token_works_again_once_its_owner_enrolls(api_client, admin_user):
    secret = _token_secret(admin_user)
    totp_device_create(admin_user)
    assert api_client.get("/api/v1/quantum/jobs/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    assert _handshake("/ws/events/", _bearer(secret))[0] is True


def test_promotion_into_an_mfa_role_suspends_tokens_until_enrollment(api_client, operator_user):
    secret = _token_secret(operator_user)
    assert api_client.get("/api/v1/quantum/jobs/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    operator_user.groups.add(Group.objects.get_or_create(name=Role.ADMIN)[0])
    assert api_client.get("/api/v1/quantum/jobs/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 403
    assert _handshake("/ws/jobs/", _bearer(secret))[0] is False


@pytest.mark.parametrize("stream", ["/ws/jobs/", "/ws/events/"])
def test_open_token_stream_closes_when_the_owners_mfa_is_reset(admin_user, monkeypatch, stream):
    monkeypatch.setattr(JobStreamConsumer, "recheck_seconds", 0)
    totp_device_create(admin_user)
    secret = _token_secret(admin_user)

    def reset_mfa():
        TOTPDevice.objects.filter(user=admin_user).delete()

    output = _closed_at_next_event(stream, _bearer(secret), reset_mfa, admin_user)
    assert output == {"type": "websocket.close", "code": UNAUTHENTICATED_CLOSE_CODE}


@pytest.mark.parametrize("stream", ["/ws/jobs/", "/ws/events/"])
def test_open_token_stream_closes_when_the_token_is_revoked(operator_user, monkeypatch, stream):
    from apps.accounts.models import ApiToken

    monkeypatch.setattr(JobStreamConsumer, "recheck_seconds", 0)
    secret = _token_secret(operator_user)

    def revoke():
        ApiToken.objects.filter(owner=operator_user).update(revoked=timezone.now())

    output = _closed_at_next_event(stream, _bearer(secret), revoke, operator_user)
    assert output == {"type": "websocket.close", "code": UNAUTHENTICATED_CLOSE_CODE}
