"""Events show live under "Your live events" for everyone who may be told of them, and for nobody else."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import Client

from apps.core.events import notify
from project.asgi import application

from ..core.test_live_events import ORIGIN, _session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def _announce(event: str, **fields) -> None:
    with transaction.atomic():  # published once committed, as from a service
        notify(event, **fields)


def test_an_event_reaches_the_live_streams_of_those_who_may_be_told_only(client, admin_user, operator_user):
    admin_cookie = _session_cookie(client, admin_user)
    operator_cookie = _session_cookie(Client(), operator_user)

    async def scenario():
        admin = WebsocketCommunicator(application, "/ws/events/", headers=[ORIGIN, admin_cookie])
        operator = WebsocketCommunicator(application, "/ws/events/", headers=[ORIGIN, operator_cookie])
        assert (await admin.connect())[0]
        assert (await operator.connect())[0]
        announce = sync_to_async(_announce)
        await announce(
            "backup.failed", data={"backup_id": 7, "path": "/backups/7/"}, summary="Backup #7 failed: disk full"
        )
        to_admin = await admin.receive_json_from(timeout=5)
        operator_heard_of_backups = not await operator.receive_nothing(timeout=0.5)
        await announce(
            "token.expiring", data={"token_name": "CI"}, user=operator_user, summary="Your API token 'CI' expires soon"
        )
        to_operator = await operator.receive_json_from(timeout=5)
        admin_heard_of_the_token = not await admin.receive_nothing(timeout=0.5)
        await admin.disconnect()
        await operator.disconnect()
        return to_admin, operator_heard_of_backups, to_operator, admin_heard_of_the_token

    to_admin, operator_heard_of_backups, to_operator, admin_heard_of_the_token = async_to_sync(scenario)()

    assert to_admin == {
        "event": "backup.failed",
        "payload": {"summary": "Backup #7 failed: disk full", "path": "/backups/7/"},
    }
    assert not operator_heard_of_backups, "operators may not see backups"
    assert to_operator == {"event": "token.expiring", "payload": {"summary": "Your API token 'CI' expires soon"}}
    assert not admin_heard_of_the_token, "a token's expiry is its holder's business"
