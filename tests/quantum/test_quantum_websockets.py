"""Live job status over /ws/jobs/ and /ws/jobs/<id>/: snapshot first, users isolated, events in order (Redis layer)."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group

from apps.core.choices import Role
from apps.core.consumers import UNAUTHENTICATED_CLOSE_CODE
from apps.jobs.choices import JobStatus
from apps.jobs.consumers import JOB_NOT_VISIBLE_CLOSE_CODE, RIGHTS_CHANGED_CLOSE_CODE, JobStreamConsumer
from apps.jobs.kinds import job_kind
from apps.jobs.publishing import jobs_publish
from apps.quantum.models import QuantumJob
from apps.quantum.services import JobSpec, job_cancel, job_submit
from project.asgi import application
from tests.core.test_live_events import ORIGIN, _session_cookie, _token_secret
from tests.quantum_circuits import ghz_qasm2

pytestmark = pytest.mark.django_db(transaction=True)


def _submit(owner, name="") -> int:
    return job_submit(owner=owner, spec=JobSpec(source=ghz_qasm2(5), name=name)).pk


def _cancel(job_id, actor) -> None:
    job_cancel(job=QuantumJob.objects.get(pk=job_id), actor=actor)


def _stream(client, user, path="/ws/jobs/") -> WebsocketCommunicator:
    return WebsocketCommunicator(application, path, headers=[ORIGIN, _session_cookie(client, user)])


async def _open(communicator) -> dict:
    """Connect and return the first message (the snapshot)."""
    connected, code = await communicator.connect()
    assert connected, code
    return await communicator.receive_json_from(timeout=5)


def _refusal(communicator) -> tuple[bool, int]:
    async def scenario():
        result = await communicator.connect()
        await communicator.disconnect()
        return result

    return async_to_sync(scenario)()


@pytest.mark.parametrize("path", ["/ws/jobs/", "/ws/jobs/1/"])
def test_anonymous_job_stream_is_refused(path):
    communicator = WebsocketCommunicator(application, path, headers=[ORIGIN])
    assert _refusal(communicator) == (False, UNAUTHENTICATED_CLOSE_CODE)


def test_snapshot_comes_first_with_each_visible_jobs_current_status(client, operator_user, admin_user):
    waiting = _submit(operator_user, "waiting")
    stopped = _submit(operator_user, "stopped")
    _cancel(stopped, operator_user)
    others = _submit(admin_user)

    communicator = _stream(client, operator_user)

    async def scenario():
        snapshot = await _open(communicator)
        await communicator.disconnect()
        return snapshot

    snapshot = async_to_sync(scenario)()
    assert snapshot["type"] == "jobs.snapshot"
    jobs = {job["id"]: job for job in snapshot["jobs"]}
    assert set(jobs) == {waiting, stopped}, f"job #{others} of another user leaked"
    assert jobs[waiting] | {"updated_at": None} == {
        "type": "job.update",
        "kind": "quantum",
        "id": waiting,
        "name": "waiting",
        "owner": "oscar-operator",
        "status": "queued",
        "updated_at": None,
        "queue_position": 1,
        "attempts": 0,
        "error": None,
        "progress": {"done": 0, "total": None},
    }
    assert jobs[waiting]["updated_at"]
    assert jobs[stopped]["status"] == JobStatus.CANCELLED
    assert jobs[stopped]["error"] == "Cancelled by oscar-operator before it ran."
    assert [job["id"] for job in snapshot["jobs"]] == sorted(jobs, reverse=True)


def test_owner_receives_own_job_updates_but_not_another_users(client, operator_user, admin_user):
    communicator = _stream(client, operator_user)

    async def scenario():
        snapshot = await _open(communicator)
        await sync_to_async(_submit)(admin_user, "not yours")
        own = await sync_to_async(_submit)(operator_user, "yours")
        received = await communicator.receive_json_from(timeout=5)
        nothing_else = await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        return snapshot, own, received, nothing_else

    snapshot, own, received, nothing_else = async_to_sync(scenario)()
    assert snapshot == {"type": "jobs.snapshot", "jobs": []}
    assert (received["id"], received["name"], received["status"]) == (own, "yours", JobStatus.QUEUED)
    assert nothing_else


@pytest.mark.parametrize("reader", ["viewer_user", "admin_user"])
def test_viewer_and_admin_receive_every_users_job_updates(client, request, reader, operator_user, compliance_user):
    user = request.getfixturevalue(reader)

    communicator = _stream(client, user)

    async def scenario():
        await _open(communicator)
        first = await sync_to_async(_submit)(operator_user)
        second = await sync_to_async(_submit)(compliance_user)
        received = [await communicator.receive_json_from(timeout=5) for _ in range(2)]
        await communicator.disconnect()
        return [first, second], received

    submitted, received = async_to_sync(scenario)()
    assert [message["id"] for message in received] == submitted
    assert [message["owner"] for message in received] == ["oscar-operator", "carl-compliance"]


@pytest.mark.parametrize("whose", ["another users", "missing"])
def test_single_job_stream_refuses_a_job_the_user_may_not_see(client, operator_user, admin_user, whose):
    job_id = _submit(admin_user) if whose == "another users" else 999_999
    communicator = _stream(client, operator_user, f"/ws/jobs/{job_id}/")
    assert _refusal(communicator) == (False, JOB_NOT_VISIBLE_CLOSE_CODE)


def test_single_job_stream_sends_the_job_first_then_only_its_updates(client, operator_user, admin_user):
    watched = _submit(operator_user, "watched")
    other = _submit(operator_user, "other")

    # An administrator watching someone else's job: the all-jobs group, filtered to this job.
    communicator = _stream(client, admin_user, f"/ws/jobs/{watched}/")

    async def scenario():
        first = await _open(communicator)
        await sync_to_async(_cancel)(other, operator_user)
        await sync_to_async(_cancel)(watched, operator_user)
        update = await communicator.receive_json_from(timeout=5)
        nothing_else = await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        return first, update, nothing_else

    first, update, nothing_else = async_to_sync(scenario)()
    assert (first["type"], first["id"], first["status"]) == ("job.update", watched, JobStatus.QUEUED)
    assert first["queue_position"] == 1
    assert (update["id"], update["status"]) == (watched, JobStatus.CANCELLED)
    assert nothing_else


def test_cancel_of_a_queued_job_is_streamed_as_cancelled(client, operator_user):
    communicator = _stream(client, operator_user)

    async def scenario():
        await _open(communicator)
        job_id = await sync_to_async(_submit)(operator_user)
        queued = await communicator.receive_json_from(timeout=5)
        await sync_to_async(_cancel)(job_id, operator_user)
        cancelled = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return job_id, queued, cancelled

    job_id, queued, cancelled = async_to_sync(scenario)()
    assert (queued["id"], queued["status"]) == (job_id, JobStatus.QUEUED)
    assert (cancelled["id"], cancelled["status"], cancelled["queue_position"]) == (job_id, JobStatus.CANCELLED, None)
    assert cancelled["error"] == "Cancelled by oscar-operator before it ran."


def test_a_real_job_streams_queued_then_running_then_completed(celery_worker, client, operator_user):
    communicator = _stream(client, operator_user)

    async def scenario():
        await _open(communicator)
        job_id = await sync_to_async(_submit)(operator_user, "ghz")
        statuses = []
        while not statuses or statuses[-1] not in (JobStatus.COMPLETED, JobStatus.FAILED):
            message = await communicator.receive_json_from(timeout=30)
            assert message["id"] == job_id
            statuses.append(message["status"])
        await communicator.disconnect()
        return statuses

    assert async_to_sync(scenario)() == [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.COMPLETED]


def test_api_token_as_subprotocol_opens_the_job_stream(operator_user):
    job_id = _submit(operator_user)
    secret = _token_secret(operator_user)
    communicator = WebsocketCommunicator(
        application, f"/ws/jobs/{job_id}/", headers=[ORIGIN], subprotocols=["bearer", secret]
    )

    async def scenario():
        connected, subprotocol = await communicator.connect()
        first = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return connected, subprotocol, first

    connected, subprotocol, first = async_to_sync(scenario)()
    assert (connected, subprotocol) == (True, "bearer")
    assert (first["type"], first["id"]) == ("job.update", job_id)


def _publish_to(user, job_id) -> None:
    job = QuantumJob.objects.select_related("owner").get(pk=job_id)
    job.owner_id = user.pk
    jobs_publish(job_kind("quantum"), [job])


def test_deactivated_user_is_disconnected_once_the_recheck_interval_has_passed(client, operator_user, monkeypatch):
    # Long enough that the first event surely comes within the interval, on a loaded machine too.
    monkeypatch.setattr(JobStreamConsumer, "recheck_seconds", 2.0)
    job_id = _submit(operator_user)

    communicator = _stream(client, operator_user)

    async def scenario():
        await _open(communicator)
        await sync_to_async(type(operator_user).objects.filter(pk=operator_user.pk).update)(is_active=False)
        await sync_to_async(_publish_to)(operator_user, job_id)
        within_interval = await communicator.receive_json_from(timeout=5)
        await communicator.receive_nothing(timeout=2.1)
        await sync_to_async(_publish_to)(operator_user, job_id)
        closed = await communicator.receive_output(timeout=5)
        await communicator.wait()
        return within_interval, closed

    within_interval, closed = async_to_sync(scenario)()
    assert within_interval["id"] == job_id, "access is re-checked at most every recheck_seconds, not per event"
    assert closed == {"type": "websocket.close", "code": UNAUTHENTICATED_CLOSE_CODE}


def test_viewer_who_loses_the_role_is_told_to_reconnect(client, viewer_user, operator_user, monkeypatch):
    monkeypatch.setattr(JobStreamConsumer, "recheck_seconds", 0)
    job_id = _submit(operator_user)

    communicator = _stream(client, viewer_user)
    viewers = Group.objects.get(name=Role.VIEWER)

    async def scenario():
        snapshot = await _open(communicator)
        await sync_to_async(viewer_user.groups.remove)(viewers)
        await sync_to_async(_publish_to)(operator_user, job_id)
        closed = await communicator.receive_output(timeout=5)
        await communicator.wait()
        return snapshot, closed

    snapshot, closed = async_to_sync(scenario)()
    assert [job["id"] for job in snapshot["jobs"]] == [job_id]
    assert closed == {"type": "websocket.close", "code": RIGHTS_CHANGED_CLOSE_CODE}
