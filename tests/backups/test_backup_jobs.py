"""Backup jobs on a real worker: a create asked through the API runs on the maintenance queue, its progress streams
to administrators (and to nobody else), and a cancel stops pg_dump — but not a verification's restore."""

import json
import os
import time
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from apps.backups.choices import BackupStatus
from apps.backups.models import BackupJob
from project.asgi import application
from tests.backups.test_backup_api import BACKUPS_URL, JOBS_URL, _detail_url
from tests.core.test_live_events import ORIGIN, _session_cookie
from tests.helpers import messages_until_quiet


def _wait_for(job_id: int, condition, *, timeout: float = 60) -> BackupJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = BackupJob.objects.select_related("backup").get(pk=job_id)
        if condition(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"backup job #{job_id} is still {job.status} after {timeout} s")


def _finished(job: BackupJob) -> bool:
    return job.is_finished


@pytest.fixture
def slow_program(tmp_path, monkeypatch):
    """``slow_program(name, seconds)``: a program of that name first on PATH that sleeps and writes nothing (a
    dump or restore that takes long), so that a test can act while it runs."""

    def install(name: str, seconds: int) -> None:
        folder = tmp_path / "bin"
        folder.mkdir(exist_ok=True)
        program = Path(folder / name)
        program.write_text(f"#!/bin/sh\nexec sleep {seconds}\n")
        program.chmod(0o755)
        monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")

    return install


def test_a_backup_asked_through_the_api_is_made_by_a_worker(celery_worker, api_client, admin_user, backup_dir):
    api_client.force_authenticate(admin_user)

    response = api_client.post(BACKUPS_URL)

    assert response.status_code == 202, response.content
    job = _wait_for(response.json()["id"], _finished)
    assert (job.status, job.attempts, job.error) == ("completed", 1, "")
    assert job.worker
    assert job.celery_task_id
    backup = job.backup
    assert (backup.status, backup.triggered_by_id) == (BackupStatus.COMPLETED, admin_user.pk)
    assert job.progress_done == backup.size_bytes == (backup_dir / backup.path).stat().st_size
    shown = api_client.get(response["Location"]).json()
    assert (shown["status"], shown["bytes_written"], shown["backup"]["status"]) == (
        "completed",
        backup.size_bytes,
        "completed",
    )


def test_backup_job_progress_streams_to_administrators_and_not_to_viewers(
    celery_worker,
    client,
    admin_user,
    viewer_user,
    backup_dir,
):
    from apps.backups.jobs import backup_job_request

    all_jobs = WebsocketCommunicator(application, "/ws/jobs/", headers=[ORIGIN, _session_cookie(client, admin_user)])
    viewer_stream = WebsocketCommunicator(
        application, "/ws/jobs/", headers=[ORIGIN, _session_cookie(Client(), viewer_user)]
    )
    admin_cookie = _session_cookie(Client(), admin_user)

    async def scenario():
        for stream in (all_jobs, viewer_stream):
            connected, _ = await stream.connect()
            assert connected
            await stream.receive_json_from(timeout=5)  # the snapshot
        job = await sync_to_async(backup_job_request)("create", admin_user)
        one_job = WebsocketCommunicator(application, f"/ws/jobs/backup/{job.pk}/", headers=[ORIGIN, admin_cookie])
        connected, _ = await one_job.connect()
        assert connected
        streamed = {"all": [], "one": []}
        for name, stream in (("all", all_jobs), ("one", one_job)):
            while not streamed[name] or streamed[name][-1]["status"] not in ("completed", "failed"):
                message = await stream.receive_json_from(timeout=60)
                if message.get("kind") == "backup":
                    streamed[name].append(message)
        viewer_received = await messages_until_quiet(viewer_stream)
        for stream in (all_jobs, viewer_stream, one_job):
            await stream.disconnect()
        return job, streamed, viewer_received

    job, streamed, viewer_received = async_to_sync(scenario)()

    job.refresh_from_db()
    size = job.backup.size_bytes
    for updates in streamed.values():
        assert {update["id"] for update in updates} == {job.pk}
        assert updates[-1]["status"] == "completed"
        assert updates[-1]["progress"]["bytes_written"] == size
        assert updates[-1]["backup"] == job.backup_id
        assert updates[-1]["operation"] == "create"
    statuses = [update["status"] for update in streamed["all"]]
    assert statuses[0] == "queued"
    assert "running" in statuses
    running = [update for update in streamed["all"] if update["status"] == "running"]
    assert running[-1]["backup"] == job.backup_id, "the backup is linked to its job while it is written"
    assert all(message["type"] == "websocket.send" for message in viewer_received), "the viewer's stream stays open"
    assert "backup" not in {json.loads(message["text"]).get("kind") for message in viewer_received}


def test_cancelling_a_running_backup_stops_pg_dump_within_two_seconds(
    celery_worker,
    api_client,
    admin_user,
    backup_dir,
    slow_program,
):
    slow_program("pg_dump", 60)
    api_client.force_authenticate(admin_user)
    job_id = api_client.post(BACKUPS_URL).json()["id"]
    _wait_for(job_id, lambda job: job.status == "running" and job.backup_id is not None)

    response = api_client.post(f"{JOBS_URL}{job_id}/cancel/")
    asked = time.monotonic()

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelling"
    job = _wait_for(job_id, _finished, timeout=10)
    assert time.monotonic() - asked < 2
    assert job.status == "cancelled"
    assert job.backup.status == BackupStatus.FAILED
    assert "pg_dump was stopped by signal" in job.backup.error
    assert list(backup_dir.glob("*")) == []


def test_a_verification_cannot_be_cancelled_once_its_restore_started(
    celery_worker,
    api_client,
    admin_user,
    stored_backup,
    slow_program,
):
    slow_program("pg_restore", 3)
    api_client.force_authenticate(admin_user)
    job_id = api_client.post(_detail_url(stored_backup.pk, "verify/")).json()["id"]
    _wait_for(job_id, lambda job: not job.cancellable)

    response = api_client.post(f"{JOBS_URL}{job_id}/cancel/")

    assert response.status_code == 409, response.content
    assert "can no longer be cancelled" in response.json()["detail"]
    assert BackupJob.objects.get(pk=job_id).status == "running"
    job = _wait_for(job_id, _finished)
    assert job.status == "completed"
    assert job.backup.status == BackupStatus.VERIFY_FAILED
    assert job.backup.verification["reason"] == "row_counts", "the sleeping pg_restore restored nothing"
