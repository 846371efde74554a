"""Websocket streams refuse anonymous users and deliver only the user's own events (Redis layer)."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings

from apps.core.consumers import UNAUTHENTICATED_CLOSE_CODE
from apps.core.services import live_event_publish, user_group_name
from project.asgi import application
from tests.mfa import otp_force_login

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://localhost")


def _session_cookie(client, user) -> tuple[bytes, bytes]:
    """The session cookie of ``user`` signed in as the two-step sign-in leaves it (OTP-verified)."""
    otp_force_login(client, user)
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode())


def _connect(headers):
    return WebsocketCommunicator(application, "/ws/events/", headers=headers)


def test_anonymous_websocket_is_refused():
    async def scenario():
        communicator = _connect([ORIGIN])
        connected, code = await communicator.connect()
        await communicator.disconnect()
        return connected, code

    assert async_to_sync(scenario)() == (False, UNAUTHENTICATED_CLOSE_CODE)


def test_foreign_origin_is_refused(client, operator_user):
    cookie = _session_cookie(client, operator_user)

    async def scenario():
        communicator = _connect([(b"origin", b"http://evil.example"), cookie])
        connected, _ = await communicator.connect()
        await communicator.disconnect()
        return connected

    assert async_to_sync(scenario)() is False


def test_user_receives_own_events_and_not_others(client, operator_user, viewer_user):
    cookie = _session_cookie(client, operator_user)

    async def scenario():
        communicator = _connect([ORIGIN, cookie])
        connected, _ = await communicator.connect()
        assert connected
        publish = sync_to_async(live_event_publish)
        await publish(group=user_group_name(viewer_user.pk), event="job.updated", payload={"id": 1})
        await publish(group=user_group_name(operator_user.pk), event="job.updated", payload={"id": 2})
        received = await communicator.receive_json_from(timeout=5)
        nothing_else = await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        return received, nothing_else

    received, nothing_else = async_to_sync(scenario)()
    assert received == {"event": "job.updated", "payload": {"id": 2}}
    assert nothing_else


def test_deactivated_user_is_disconnected_at_next_event(client, operator_user):
    cookie = _session_cookie(client, operator_user)

    async def scenario():
        communicator = _connect([ORIGIN, cookie])
        connected, _ = await communicator.connect()
        assert connected
        await sync_to_async(type(operator_user).objects.filter(pk=operator_user.pk).update)(is_active=False)
        await sync_to_async(live_event_publish)(
            group=user_group_name(operator_user.pk), event="job.updated", payload={"id": 3}
        )
        output = await communicator.receive_output(timeout=5)
        await communicator.wait()
        return output

    output = async_to_sync(scenario)()
    assert output == {"type": "websocket.close", "code": UNAUTHENTICATED_CLOSE_CODE}


def _token_secret(user) -> str:
    from apps.accounts.tokens import token_create

    return token_create(owner=user, name="socket", scopes=["read"], expires_in_days=1).secret


def _receives_own_event(communicator, user) -> dict:
    async def scenario():
        connected, subprotocol = await communicator.connect()
        assert connected
        await sync_to_async(live_event_publish)(group=user_group_name(user.pk), event="job.updated", payload={"id": 7})
        message = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return subprotocol, message

    return async_to_sync(scenario)()


def test_api_token_in_the_authorization_header_opens_a_stream(operator_user):
    secret = _token_secret(operator_user)
    communicator = _connect([ORIGIN, (b"authorization", f"Bearer {secret}".encode())])
    _, message = _receives_own_event(communicator, operator_user)
    assert message == {"event": "job.updated", "payload": {"id": 7}}


def test_api_token_as_subprotocol_opens_a_stream_and_is_acknowledged(operator_user):
    secret = _token_secret(operator_user)
    communicator = WebsocketCommunicator(application, "/ws/events/", headers=[ORIGIN], subprotocols=["bearer", secret])
    subprotocol, message = _receives_own_event(communicator, operator_user)
    assert subprotocol == "bearer"
    assert message["payload"] == {"id": 7}


@pytest.mark.parametrize("where", ["header", "query"])
def test_bad_or_misplaced_token_is_refused(operator_user, where):
    secret = _token_secret(operator_user)
    if where == "header":
        communicator = _connect([ORIGIN, (b"authorization", b"Bearer odk_00000000_wrong")])
    else:
        communicator = WebsocketCommunicator(application, f"/ws/events/?token={secret}", headers=[ORIGIN])

    async def scenario():
        result = await communicator.connect()
        await communicator.disconnect()
        return result

    assert async_to_sync(scenario)() == (False, UNAUTHENTICATED_CLOSE_CODE)


def test_an_idle_socket_still_receives_after_the_redis_read_timeout(client, operator_user):
    cookie = _session_cookie(client, operator_user)

    async def scenario():
        communicator = _connect([ORIGIN, cookie])
        connected, _ = await communicator.connect()
        assert connected
        # Nothing arrives for longer than redis-py's default 5 s read timeout...
        assert await communicator.receive_nothing(timeout=7)
        await sync_to_async(live_event_publish)(
            group=user_group_name(operator_user.pk), event="job.updated", payload={"id": 3}
        )
        # ...and the socket is still there to deliver the next event.
        received = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return received

    assert async_to_sync(scenario)() == {"event": "job.updated", "payload": {"id": 3}}
