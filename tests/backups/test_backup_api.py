"""Backups API: administrators only (compliance officers read the evidence), real pg_dump, verify, manifest, and
the encrypted file only inside the sudo window; every create, verify and download audited."""

import base64
import hashlib

import pytest
from django.db.migrations.loader import MigrationLoader

from apps.audit.models import AuditEvent
from apps.backups.choices import BackupStatus, BackupTrigger
from apps.backups.keys import backup_key
from apps.backups.models import Backup, BackupJob
from apps.backups.stream import MAGIC
from apps.backups.tasks import run_job
from tests.backups.conftest import backup_row
from tests.helpers import api_error_detail
from tests.mfa import sudo_force_login, without_fresh_code

BACKUPS_URL = "/api/v1/backups/"
JOBS_URL = "/api/v1/backups/jobs/"


def _latest_migration(app_label: str) -> str:
    """The newest migration of an app in the code: what a backup taken now records for it."""
    [(_, name)] = MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes(app_label)
    return name


def _detail_url(backup_id: int, suffix: str = "") -> str:
    return f"{BACKUPS_URL}{backup_id}/{suffix}"


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


# --- Who may do what


@pytest.mark.django_db
@pytest.mark.parametrize("user", ["operator_user", "viewer_user", "outsider_user"])
@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("get", ""),
        ("get", "{id}/"),
        ("post", ""),
        ("post", "{id}/verify/"),
        ("get", "{id}/download/"),
        ("get", "{id}/manifest/"),
    ],
    ids=["list", "detail", "create", "verify", "download", "manifest"],
)
def test_operators_viewers_and_users_without_a_role_are_refused_every_backup_endpoint(
    api_client, request, user, method, suffix
):
    backup = backup_row()
    sudo_force_login(api_client, request.getfixturevalue(user))

    response = getattr(api_client, method)(BACKUPS_URL + suffix.format(id=backup.pk))

    api_error_detail(response, 403, "permission_denied")
    assert Backup.objects.count() == 1


@pytest.mark.django_db
def test_compliance_officer_reads_the_list_and_details_as_evidence(api_client, compliance_user):
    backup = backup_row(status=BackupStatus.VERIFIED, verification={"ok": True, "tables": 3})
    api_client.force_authenticate(compliance_user)

    listed = api_client.get(BACKUPS_URL)
    detail = api_client.get(_detail_url(backup.pk))

    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["results"]] == [backup.pk]
    assert detail.status_code == 200
    assert detail.json()["verification"] == {"ok": True, "tables": 3}
    assert detail.json()["row_counts"] == {"accounts_user": 3}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "suffix"),
    [("post", ""), ("post", "{id}/verify/"), ("get", "{id}/download/"), ("get", "{id}/manifest/")],
    ids=["create", "verify", "download", "manifest"],
)
def test_compliance_officer_cannot_create_verify_or_download(api_client, compliance_user, method, suffix):
    backup = backup_row()
    sudo_force_login(api_client, compliance_user)

    response = getattr(api_client, method)(BACKUPS_URL + suffix.format(id=backup.pk))

    assert "Only administrators" in api_error_detail(response, 403, "permission_denied")
    assert Backup.objects.count() == 1


@pytest.mark.django_db
def test_admin_lists_backups_newest_first_filtered_by_status_and_trigger(api_client, admin_user):
    scheduled = backup_row(trigger=BackupTrigger.SCHEDULE)
    failed = backup_row(status=BackupStatus.FAILED, trigger=BackupTrigger.USER, error="pg_dump failed")
    asked = backup_row(status=BackupStatus.VERIFIED, trigger=BackupTrigger.USER)
    api_client.force_authenticate(admin_user)

    def ids(**filters):
        response = api_client.get(BACKUPS_URL, filters)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids() == [asked.pk, failed.pk, scheduled.pk]
    assert ids(status="failed") == [failed.pk]
    assert ids(trigger="user") == [asked.pk, failed.pk]
    assert ids(trigger="schedule", status="completed") == [scheduled.pk]
    listed = api_client.get(BACKUPS_URL).json()["results"][1]
    assert listed["error"] == "pg_dump failed"
    assert "row_counts" not in listed
    api_error_detail(api_client.get(BACKUPS_URL, {"status": "lost"}), 400, "invalid")


@pytest.mark.django_db
def test_api_root_links_the_backups(api_client, admin_user):
    api_client.force_authenticate(admin_user)
    assert api_client.get("/api/v1/").json()["backups"].endswith(BACKUPS_URL)


# --- Create and verify: 202 with a job, run by a worker


def _accepted_job(response) -> dict:
    """The job of a 202 answer, checked against its Location."""
    assert response.status_code == 202, response.content
    job = response.json()
    assert response["Location"].endswith(_job_url(job["id"]))
    assert (job["status"], job["attempts"], job["bytes_written"], job["error"]) == ("queued", 0, 0, "")
    return job


def _job_url(job_id: int, suffix: str = "") -> str:
    return f"{JOBS_URL}{job_id}/{suffix}"


def _run(job_id: int) -> BackupJob:
    """Run the job's task here, as a worker would, and return the job as it ended."""
    run_job.apply(args=[job_id])
    return BackupJob.objects.select_related("backup").get(pk=job_id)


def test_admin_creates_a_backup_with_pg_dump_as_a_job_and_the_creation_is_audited(
    transactional_db, api_client, admin_user, backup_dir
):
    api_client.force_authenticate(admin_user)

    job = _accepted_job(api_client.post(BACKUPS_URL))

    assert (job["operation"], job["owner"], job["backup"]) == ("create", "alice-admin", None)
    ended = _run(job["id"])
    assert (ended.status, ended.attempts, ended.error) == ("completed", 1, "")
    body = api_client.get(_detail_url(ended.backup_id)).json()
    assert (body["status"], body["trigger"], body["triggered_by"]) == ("completed", "user", "alice-admin")
    assert body["database_engine"] == "postgresql"
    assert body["server_version"].startswith("PostgreSQL ")
    assert body["row_counts"]["accounts_user"] == 1
    assert body["migrations"]["backups"] == _latest_migration("backups")
    stored = (backup_dir / body["path"]).read_bytes()
    assert stored.startswith(MAGIC)
    assert (len(stored), hashlib.sha256(stored).hexdigest()) == (body["size_bytes"], body["sha256"])
    shown = api_client.get(_job_url(job["id"])).json()
    assert (shown["status"], shown["bytes_written"], shown["backup"]["id"]) == ("completed", len(stored), body["id"])
    [created] = _events("backup.created")
    assert (created.actor_username, created.object_id, created.outcome) == ("alice-admin", str(body["id"]), "success")
    assert [event.action for event in AuditEvent.objects.filter(object_type="backups.backupjob").order_by("id")] == [
        "backup.job.submitted",
        "backup.job.completed",
    ]


def test_create_without_pg_dump_fails_its_job_naming_it_and_leaves_a_failed_backup(
    transactional_db, api_client, admin_user, backup_dir, monkeypatch
):
    api_client.force_authenticate(admin_user)
    job = _accepted_job(api_client.post(BACKUPS_URL))
    monkeypatch.setenv("PATH", "/nonexistent")

    ended = _run(job["id"])

    assert ended.status == "failed"
    assert "pg_dump is not installed" in ended.error
    assert (ended.backup.status, ended.backup.error) == (BackupStatus.FAILED, ended.error)
    assert list(backup_dir.glob("*")) == []
    assert _events("backup.created")[0].outcome == "failure"
    assert _events("backup.job.failed")[0].outcome == "failure"


def test_create_without_a_key_is_a_409_naming_the_setting_and_queues_nothing(
    transactional_db, api_client, admin_user, settings
):
    settings.BACKUP_ENCRYPTION_KEY = None
    api_client.force_authenticate(admin_user)

    detail = api_error_detail(api_client.post(BACKUPS_URL), 409, "backup_failed")

    assert "BACKUP_ENCRYPTION_KEY" in detail
    assert not Backup.objects.exists()
    assert not BackupJob.objects.exists()


def test_verify_queues_a_job_that_restores_into_a_scratch_database(api_client, admin_user, stored_backup):
    api_client.force_authenticate(admin_user)

    job = _accepted_job(api_client.post(_detail_url(stored_backup.pk, "verify/")))

    assert (job["operation"], job["backup"]["id"], job["backup"]["status"]) == ("verify", stored_backup.pk, "completed")
    ended = _run(job["id"])
    assert (ended.status, ended.cancellable) == ("completed", False)
    body = api_client.get(_detail_url(stored_backup.pk)).json()
    assert body["status"] == "verified"
    assert body["verified_at"]
    assert body["verification"]["ok"] is True
    assert body["verification"]["tables_compared"] == len(stored_backup.row_counts)
    verified = _events("backup.verified")
    assert [(event.actor_username, event.object_id) for event in verified] == [("alice-admin", str(stored_backup.pk))]


def test_verify_of_a_corrupted_file_completes_its_job_with_the_backup_verify_failed(
    api_client, admin_user, stored_backup, backup_dir
):
    path = backup_dir / stored_backup.path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    api_client.force_authenticate(admin_user)

    job = _accepted_job(api_client.post(_detail_url(stored_backup.pk, "verify/")))
    ended = _run(job["id"])

    assert ended.status == "completed"
    body = api_client.get(_job_url(job["id"])).json()["backup"]
    assert body["status"] == "verify_failed"
    stored_backup.refresh_from_db()
    assert (stored_backup.verification["ok"], stored_backup.verification["reason"]) == (False, "checksum")
    assert _events("backup.verified")[0].outcome == "failure"


@pytest.mark.django_db
def test_verify_of_a_failed_backup_is_a_409_with_the_reason_and_queues_nothing(api_client, admin_user):
    failed = backup_row(status=BackupStatus.FAILED, error="pg_dump failed")
    api_client.force_authenticate(admin_user)

    detail = api_error_detail(api_client.post(_detail_url(failed.pk, "verify/")), 409, "backup_failed")

    assert "only completed backups can be verified" in detail
    failed.refresh_from_db()
    assert failed.status == BackupStatus.FAILED
    assert not BackupJob.objects.exists()


# --- Backup jobs


@pytest.mark.django_db
@pytest.mark.parametrize("user", ["compliance_user", "operator_user", "viewer_user"])
def test_only_administrators_see_or_cancel_backup_jobs(api_client, request, user, admin_user):
    job = BackupJob.objects.create(operation="create", owner=admin_user)
    api_client.force_authenticate(request.getfixturevalue(user))

    for response in (
        api_client.get(JOBS_URL),
        api_client.get(_job_url(job.pk)),
        api_client.post(_job_url(job.pk, "cancel/")),
    ):
        assert "Only administrators" in api_error_detail(response, 403, "permission_denied")
    job.refresh_from_db()
    assert job.status == "queued"


@pytest.mark.django_db
def test_admin_lists_backup_jobs_newest_first_filtered_by_operation(api_client, admin_user):
    backup = backup_row()
    created = BackupJob.objects.create(operation="create", owner=admin_user)
    verify = BackupJob.objects.create(operation="verify", owner=admin_user, backup=backup)
    api_client.force_authenticate(admin_user)

    listed = api_client.get(JOBS_URL).json()["results"]
    assert [row["id"] for row in listed] == [verify.pk, created.pk]
    assert [row["id"] for row in api_client.get(JOBS_URL, {"operation": "verify"}).json()["results"]] == [verify.pk]
    assert listed[0]["backup"]["id"] == backup.pk
    api_error_detail(api_client.get(JOBS_URL, {"operation": "drop"}), 400, "invalid")
    api_error_detail(api_client.get(_job_url(999999)), 404, "not_found")


@pytest.mark.django_db
def test_a_queued_job_is_cancelled_at_once_and_never_runs(api_client, admin_user):
    api_client.force_authenticate(admin_user)
    job = _accepted_job(api_client.post(BACKUPS_URL))

    response = api_client.post(_job_url(job["id"], "cancel/"))

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    assert "before it ran" in response.json()["error"]
    ended = _run(job["id"])
    assert (ended.status, ended.attempts, ended.backup_id) == ("cancelled", 0, None)
    assert not Backup.objects.exists()
    assert api_client.post(_job_url(job["id"], "cancel/")).status_code == 409


# --- Download and manifest: only inside the sudo window


@pytest.mark.parametrize("suffix", ["download/", "manifest/"])
@pytest.mark.parametrize("session", ["code-only", "sudo-expired", "api-token"])
def test_download_and_manifest_are_refused_outside_the_sudo_window(
    api_client, admin_user, stored_backup, suffix, session
):
    headers = without_fresh_code(api_client, admin_user, session)

    response = api_client.get(_detail_url(stored_backup.pk, suffix), **headers)

    detail = api_error_detail(response, 403, "reauthentication_required")
    assert "authenticator code" in detail
    assert not _events("backup.downloaded")
    assert not _events("backup.manifest_downloaded")


def test_download_inside_the_sudo_window_is_the_encrypted_file_and_is_audited(
    api_client, admin_user, stored_backup, backup_dir
):
    sudo_force_login(api_client, admin_user)

    response = api_client.get(_detail_url(stored_backup.pk, "download/"))

    assert response.status_code == 200
    data = b"".join(response.streaming_content)
    assert data == (backup_dir / stored_backup.path).read_bytes()
    assert hashlib.sha256(data).hexdigest() == stored_backup.sha256 == response["X-Backup-SHA256"]
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == f'attachment; filename="{stored_backup.path}"'
    [downloaded] = _events("backup.downloaded")
    assert (downloaded.actor_username, downloaded.object_id) == ("alice-admin", str(stored_backup.pk))


def test_manifest_describes_the_file_and_never_holds_the_key(api_client, admin_user, stored_backup, settings):
    sudo_force_login(api_client, admin_user)

    response = api_client.get(_detail_url(stored_backup.pk, "manifest/"))

    assert response.status_code == 200, response.content
    manifest = response.json()
    assert manifest["id"] == stored_backup.pk
    assert manifest["file_name"] == stored_backup.path
    assert (manifest["sha256"], manifest["size_bytes"]) == (stored_backup.sha256, stored_backup.size_bytes)
    assert (manifest["key_id"], manifest["compression"]) == (stored_backup.key_id, stored_backup.compression)
    assert manifest["database_engine"] == "postgresql"
    assert manifest["server_version"] == stored_backup.server_version
    assert manifest["migrations"] == stored_backup.migrations
    assert manifest["row_counts"] == stored_backup.row_counts
    assert manifest["encryption"].startswith("AES-256-GCM")
    text, key = response.content.decode(), backup_key()
    for form in (str(settings.BACKUP_ENCRYPTION_KEY), key.hex(), base64.b64encode(key).decode()):
        assert form not in text
    assert len(_events("backup.manifest_downloaded")) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("status", [BackupStatus.FAILED, BackupStatus.RUNNING, BackupStatus.PRUNED])
def test_download_of_a_backup_without_a_file_is_a_409(api_client, admin_user, status):
    backup = backup_row(status=status)
    sudo_force_login(api_client, admin_user)

    detail = api_error_detail(api_client.get(_detail_url(backup.pk, "download/")), 409, "backup_failed")

    assert "no stored file" in detail


@pytest.mark.django_db
def test_download_of_a_file_missing_from_storage_is_a_409_naming_the_file(api_client, admin_user, backup_dir):
    backup = backup_row(path="opsdeck-gone.backup")
    sudo_force_login(api_client, admin_user)

    detail = api_error_detail(api_client.get(_detail_url(backup.pk, "download/")), 409, "backup_failed")

    assert "opsdeck-gone.backup" in detail
    assert not _events("backup.downloaded")


@pytest.mark.django_db
def test_download_service_refuses_a_backup_without_a_file_and_audits_nothing(admin_user):
    from apps.audit.models import AuditEvent
    from apps.backups.choices import BackupStatus
    from apps.backups.models import Backup
    from apps.backups.services import BackupError, backup_file_open

    failed = Backup.objects.create(
        status=BackupStatus.FAILED, compression="zstd", key_id="x", storage_name="backups", database_engine="pg",
        trigger="user",
    )  # fmt: skip

    with pytest.raises(BackupError, match="has no stored file"):
        backup_file_open(backup=failed, actor=admin_user)
    assert not AuditEvent.objects.filter(action="backup.downloaded").exists()
