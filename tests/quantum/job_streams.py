"""Submit a job through the API while watching /ws/jobs/, as an operator's page does."""

from asgiref.sync import async_to_sync, sync_to_async

from apps.jobs.choices import JobStatus
from tests.quantum.test_quantum_websockets import _open, _stream

JOBS_URL = "/api/v1/quantum/jobs/"


def submitted_job_statuses(client, api_client, user, body: dict) -> tuple[int, list[str]]:
    """POST ``body`` with ``api_client`` and return the job's id and every status the stream announced until it
    finished."""
    communicator = _stream(client, user)

    async def scenario():
        await _open(communicator)
        response = await sync_to_async(api_client.post)(JOBS_URL, body, format="json")
        assert response.status_code == 201, response.content
        job_id = response.json()["id"]
        statuses = []
        while not statuses or statuses[-1] not in (JobStatus.COMPLETED, JobStatus.FAILED):
            message = await communicator.receive_json_from(timeout=60)
            assert message["id"] == job_id
            statuses.append(message["status"])
        await communicator.disconnect()
        return job_id, statuses

    return async_to_sync(scenario)()
