"""A version's validation result on /ws/jobs/: its uploader, its model's owner and those who see everyone's jobs
receive it; another operator does not."""

import io

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from apps.registry.services import model_register, version_upload, version_validate
from project.asgi import application
from tests.core.test_live_events import ORIGIN, _session_cookie
from tests.factories import UserFactory
from tests.registry_models import build_tiny_classifier, pack_zip

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("registry_storage")]


def _stream(user) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, "/ws/jobs/", headers=[ORIGIN, _session_cookie(Client(), user)])


def test_validation_result_reaches_the_uploader_owner_and_viewers_but_not_other_operators(
    operator_user, admin_user, viewer_user, tmp_path
):
    model = model_register(owner=operator_user, name="sentiment", task="text-classification")
    artifact = pack_zip(build_tiny_classifier(tmp_path / "model"))
    # An administrator uploads to the operator's model: both must hear of it.
    version = version_upload(model=model, upload=io.BytesIO(artifact), actor=admin_user)
    other = UserFactory(username="olga-operator", roles=["operator"])
    listeners = {user.username: _stream(user) for user in (operator_user, admin_user, viewer_user, other)}

    async def scenario():
        for communicator in listeners.values():
            connected, _ = await communicator.connect()
            assert connected
            await communicator.receive_json_from(timeout=5)  # the snapshot
        await sync_to_async(version_validate)(version_id=version.pk)
        received = {}
        for username, communicator in listeners.items():
            if username == other.username:
                received[username] = await communicator.receive_nothing(timeout=1)
            else:
                received[username] = await communicator.receive_json_from(timeout=5)
            await communicator.disconnect()
        return received

    received = async_to_sync(scenario)()

    assert received.pop(other.username) is True  # nothing arrived
    version.refresh_from_db()
    expected = {
        "type": "version.update",
        "kind": "model-version",
        "id": version.pk,
        "model": "sentiment",
        "version": 1,
        "status": "ready",
        "status_reason": "",
        "updated_at": version.validated_at.isoformat(),
    }
    assert received == {username: expected for username in received}
