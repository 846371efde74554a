"""Backups in the admin: the list and read-only detail, "Create a backup now", "Verify selected", and the restore
page that needs sudo mode with a fresh authenticator code."""

import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.messages import get_messages
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.sudo import SUDO_SESSION_KEY
from apps.audit.models import AuditEvent
from apps.backups.choices import BackupStatus, BackupTrigger
from apps.backups.jobs import backup_job_request
from apps.backups.models import Backup, BackupJob
from apps.backups.tasks import run_job
from apps.core.choices import Role
from apps.jobs.lifecycle import jobs_requeue_lost
from tests.backups.conftest import backup_row
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.mfa import sudo_force_login, totp_code

CHANGELIST_URL = "/admin/backups/backup/"
CREATE_URL = "/admin/backups/backup/create/"
JOBS_URL = "/admin/backups/backupjob/"


def _job_change_url(job_id: int) -> str:
    return f"{JOBS_URL}{job_id}/change/"


def _change_url(backup_id: int) -> str:
    return f"{CHANGELIST_URL}{backup_id}/change/"


def _restore_url(backup_id: int) -> str:
    return f"{CHANGELIST_URL}{backup_id}/restore/"


def _messages(response) -> list[tuple[str, str]]:
    return [(message.level_tag, str(message)) for message in get_messages(response.wsgi_request)]


def _listed_ids(response) -> list[int]:
    return [backup.id for backup in response.context["cl"].result_list]


@pytest.fixture
def sudo_client(client, roles, admin_user):
    sudo_force_login(client, admin_user)
    return client


# --- List and detail


@pytest.mark.django_db
def test_changelist_shows_size_duration_and_verification_and_filters_by_status_and_trigger(admin_client):
    verified = backup_row(status=BackupStatus.VERIFIED, size_bytes=5 * 1024 * 1024, duration_seconds=2.5)
    failed = backup_row(status=BackupStatus.FAILED, trigger=BackupTrigger.USER, size_bytes=None, error="no pg_dump")

    response = admin_client.get(CHANGELIST_URL)

    assert response.status_code == 200
    assert _listed_ids(response) == [failed.pk, verified.pk]
    page = response.content.decode()
    assert "5.0\xa0MB" in page
    assert "2.5 s" in page
    assert "Create a backup now" in page
    assert _listed_ids(admin_client.get(CHANGELIST_URL, {"status__exact": "failed"})) == [failed.pk]
    assert _listed_ids(admin_client.get(CHANGELIST_URL, {"trigger__exact": "schedule"})) == [verified.pk]


@pytest.mark.django_db
def test_detail_is_read_only_and_shows_row_counts_verification_report_and_the_restore_link(admin_client):
    backup = backup_row(
        status=BackupStatus.VERIFIED,
        row_counts={"accounts_user": 12_345, "quantum_quantumjob": 7},
        verification={"ok": True, "message": "The backup restores and holds the recorded rows.", "reason": None},
        migrations={"accounts": "0003_user_sessions"},
    )

    response = admin_client.get(_change_url(backup.pk))

    assert response.status_code == 200
    page = response.content.decode()
    assert '<th scope="row">accounts_user</th><td>12,345</td>' in page
    assert '<th scope="row">Message</th><td>The backup restores and holds the recorded rows.</td>' in page
    assert '<th scope="row">Ok</th><td>yes</td>' in page
    assert '<th scope="row">accounts</th><td>0003_user_sessions</td>' in page
    assert "&quot;message&quot;" not in page  # a table, not the stored JSON
    assert f'href="{_restore_url(backup.pk)}"' in page
    assert 'name="_save"' not in page
    assert admin_client.get(f"{CHANGELIST_URL}add/").status_code == 403
    assert admin_client.post(f"{CHANGELIST_URL}{backup.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Backup.objects.filter(pk=backup.pk).exists()


@pytest.mark.django_db
def test_a_failed_backup_has_no_restore_link(admin_client):
    failed = backup_row(status=BackupStatus.FAILED, error="pg_dump failed (exit 1): out of memory")

    page = admin_client.get(_change_url(failed.pk)).content.decode()

    assert "pg_dump failed (exit 1): out of memory" in page
    assert _restore_url(failed.pk) not in page


@pytest.mark.django_db
def test_staff_compliance_officer_sees_the_list_but_cannot_create_verify_or_restore(client, roles):
    officer = UserFactory(username="cora-compliance", is_staff=True, roles=[Role.COMPLIANCE])
    backup = backup_row()
    sudo_force_login(client, officer)

    response = client.get(CHANGELIST_URL)

    assert response.status_code == 200
    assert "Create a backup now" not in response.content.decode()
    assert response.context["action_form"] is None  # no action the officer may run
    assert _restore_url(backup.pk) not in client.get(_change_url(backup.pk)).content.decode()
    assert client.post(CREATE_URL).status_code == 403
    assert client.get(_restore_url(backup.pk)).status_code == 403
    assert Backup.objects.count() == 1


# --- Create and verify


def test_create_button_queues_a_job_that_takes_the_backup_and_links_to_it(
    transactional_db,
    admin_client,
    backup_dir,
):
    response = admin_client.post(CREATE_URL, follow=True)

    [job] = BackupJob.objects.all()
    assert (job.operation, job.status, job.owner.username) == ("create", "queued", "alice-admin")
    [(level, text)] = _messages(response)
    assert level == "success"
    assert text.startswith(f'<a href="{_job_change_url(job.pk)}">{job}</a> queued: a worker takes the backup')
    run_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == "completed"
    assert (job.backup.status, job.backup.trigger, job.backup.triggered_by.username) == (
        "completed",
        "user",
        "alice-admin",
    )
    assert (backup_dir / job.backup.path).stat().st_size == job.backup.size_bytes
    page = admin_client.get(_job_change_url(job.pk)).content.decode()
    assert f"Backup #{job.backup.pk}</a>" in page
    listed = admin_client.get(JOBS_URL).content.decode()
    assert "Completed" in listed
    assert filesizeformat(job.backup.size_bytes) in listed


def test_create_without_a_key_shows_the_error_and_queues_nothing(transactional_db, admin_client, settings):
    settings.BACKUP_ENCRYPTION_KEY = None

    response = admin_client.post(CREATE_URL, follow=True)

    assert response.status_code == 200
    [(level, text)] = _messages(response)
    assert level == "error"
    assert "BACKUP_ENCRYPTION_KEY" in text
    assert not BackupJob.objects.exists()


@pytest.mark.django_db
def test_create_is_a_post_only(admin_client):
    assert admin_client.get(CREATE_URL).status_code == 405
    assert not Backup.objects.exists()


def test_verify_selected_queues_a_job_per_backup_and_reports_each_refusal(
    admin_client,
    stored_backup,
    backup_dir,
):
    failed = backup_row(status=BackupStatus.FAILED, error="pg_dump failed")

    response = admin_client.post(
        CHANGELIST_URL, {"action": "verify_selected", "_selected_action": [stored_backup.pk, failed.pk]}, follow=True
    )

    [job] = BackupJob.objects.all()
    assert (job.operation, job.backup_id) == ("verify", stored_backup.pk)
    assert _messages(response) == [
        (
            "error",
            f"{failed} was not verified: Backup #{failed.pk} is failed: only completed backups can be verified.",
        ),
        (
            "success",
            f'<a href="{_job_change_url(job.pk)}">{job}</a> queued: it verifies {stored_backup}; its page shows how '
            "it goes.",
        ),
    ]
    run_job.apply(args=[job.pk])
    stored_backup.refresh_from_db()
    assert stored_backup.status == BackupStatus.VERIFIED
    assert stored_backup.verification["ok"] is True


@pytest.mark.django_db
def test_backup_jobs_are_read_only_and_hidden_from_compliance_officers(admin_client, client, admin_user):
    job = BackupJob.objects.create(operation="create", owner=admin_user, error="pg_dump failed", status="failed")

    assert "pg_dump failed" in admin_client.get(JOBS_URL).content.decode()
    assert 'name="_save"' not in admin_client.get(_job_change_url(job.pk)).content.decode()
    assert admin_client.get(f"{JOBS_URL}add/").status_code == 403
    officer = UserFactory(username="cora-compliance", is_staff=True, roles=[Role.COMPLIANCE])
    sudo_force_login(client, officer)
    assert client.get(JOBS_URL).status_code == 403


# --- Restore: sudo mode with a fresh authenticator code


@pytest.mark.django_db
def test_restore_page_without_a_fresh_code_sends_to_reauthentication(admin_client):
    backup = backup_row(status=BackupStatus.VERIFIED)

    response = admin_client.get(_restore_url(backup.pk))

    assert response.status_code == 302
    assert (
        response["Location"] == f"/account/reauthenticate/?next=%2Fadmin%2Fbackups%2Fbackup%2F{backup.pk}%2Frestore%2F"
    )


@pytest.mark.django_db
def test_restore_post_without_a_fresh_code_is_refused_and_touches_nothing(admin_client, admin_user):
    backup = backup_row(status=BackupStatus.VERIFIED)
    session = admin_client.session
    session[SUDO_SESSION_KEY] = time.time() - django_settings.SUDO_WINDOW_MINUTES * 60 - 1
    session.save()

    response = admin_client.post(_restore_url(backup.pk))

    assert response.status_code == 302
    assert response["Location"].startswith("/account/reauthenticate/")
    assert [text for _, text in _messages(response)] == [
        "Nothing was restored: a restore needs your password and a fresh authenticator code. "
        "Confirm them, then confirm the restore again."
    ]
    assert list(Backup.objects.values_list("pk", flat=True)) == [backup.pk]
    assert not AuditEvent.objects.filter(action="backup.restored").exists()


@pytest.mark.django_db
def test_password_and_a_fresh_code_open_the_restore_confirmation(admin_client, admin_user):
    backup = backup_row(status=BackupStatus.VERIFIED)
    device = admin_user.totpdevice_set.get()
    reauthenticate = admin_client.get(_restore_url(backup.pk))["Location"]

    missing_code = admin_client.post(reauthenticate, {"password": DEFAULT_PASSWORD})
    assert missing_code.status_code == 200
    assert admin_client.get(_restore_url(backup.pk)).status_code == 302

    confirmed = admin_client.post(reauthenticate, {"password": DEFAULT_PASSWORD, "code": totp_code(device.key)})
    assert confirmed["Location"] == _restore_url(backup.pk)
    page = admin_client.get(_restore_url(backup.pk))
    assert page.status_code == 200
    assert f"Yes, restore {backup}" in page.content.decode()
    assert "it first takes a safety backup of the database as it is now" in page.content.decode()


@pytest.mark.django_db
def test_operator_cannot_open_the_restore_page_even_in_sudo_mode(client, roles):
    staff_operator = UserFactory(username="otto-operator", is_staff=True, roles=[Role.OPERATOR])
    backup = backup_row(status=BackupStatus.VERIFIED)
    sudo_force_login(client, staff_operator)

    assert client.get(_restore_url(backup.pk)).status_code == 403
    assert client.post(_restore_url(backup.pk)).status_code == 403


@pytest.mark.django_db
def test_restore_of_a_backup_whose_file_is_missing_shows_the_reason_and_changes_nothing(sudo_client, backup_dir):
    backup = backup_row(status=BackupStatus.VERIFIED, path="opsdeck-gone.backup")

    response = sudo_client.post(_restore_url(backup.pk))

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="restore-error"' in page
    assert "opsdeck-gone.backup" in page
    assert list(Backup.objects.values_list("pk", flat=True)) == [backup.pk]


@pytest.mark.django_db
def test_restore_page_of_a_failed_backup_says_it_cannot_be_restored(sudo_client):
    failed = backup_row(status=BackupStatus.FAILED)

    response = sudo_client.post(_restore_url(failed.pk))

    assert response.status_code == 200
    assert "cannot be restored: it is failed" in response.content.decode()
    assert list(Backup.objects.values_list("pk", flat=True)) == [failed.pk]


def test_restore_in_sudo_mode_queues_a_job_that_brings_the_data_back_and_keeps_its_own_record(
    transactional_db,
    sudo_client,
    admin_user,
    stored_backup,
):
    UserFactory(username="made-after-the-backup")

    page = sudo_client.get(_restore_url(stored_backup.pk))
    assert page.status_code == 200
    response = sudo_client.post(_restore_url(stored_backup.pk))

    job = BackupJob.objects.get(operation="restore")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/backups/backupjob/{job.pk}/change/"
    assert (job.status, job.max_attempts, job.backup_id) == ("queued", 1, stored_backup.pk)
    assert User.objects.filter(username="made-after-the-backup").exists()  # nothing happened in the request

    run_job.apply(args=[job.pk])

    job.refresh_from_db()
    assert (job.status, job.cancellable, job.error) == ("completed", False, "")
    safety = Backup.objects.get(trigger=BackupTrigger.SAFETY)
    assert safety.status == BackupStatus.COMPLETED
    assert not User.objects.filter(username="made-after-the-backup").exists()
    assert User.objects.filter(username="alice-admin").exists()
    restored = AuditEvent.objects.get(action="backup.restored")
    assert (restored.actor_username, restored.object_id) == ("alice-admin", str(stored_backup.pk))
    assert restored.changes["safety_backup_id"] == safety.pk
    # The job's request, written before the restore, is in the restored trail again; then its completion.
    job_events = AuditEvent.objects.filter(object_type="backups.backupjob", object_id=str(job.pk)).order_by("id")
    actions = [event.action for event in job_events]
    assert actions[-2:] == ["backup.job.submitted", "backup.job.completed"]
    assert "recorded_before_the_restore_at" in job_events[len(actions) - 2].changes


@pytest.mark.django_db
def test_a_restore_job_whose_worker_was_lost_fails_and_is_never_run_again(stored_backup, admin_user):
    job = backup_job_request("restore", admin_user, backup=stored_backup)
    long_ago = timezone.now() - timedelta(minutes=5)
    BackupJob.objects.filter(pk=job.pk).update(status="running", attempts=1, heartbeat_at=long_ago)

    assert jobs_requeue_lost() == {"backup": 1}

    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error.startswith("Its worker was lost during each of its 1 runs")
