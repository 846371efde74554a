"""Watching backups: readiness reports them degraded, the admin shows a banner, /metrics carries their gauges."""

from datetime import timedelta

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone

from apps.backups.choices import BackupStatus
from apps.backups.metrics import backup_metrics_record
from apps.backups.models import Backup, BackupJob
from apps.backups.services import backup_create
from apps.backups.tasks import backup_create_nightly, backup_verify_weekly
from apps.core.choices import MaintenanceStatus
from apps.core.models import MaintenanceRun
from tests.backups.test_backup_retention import backup_at
from tests.core.test_metrics import _sample
from tests.mfa import otp_force_login

BANNER = 'id="backups-health-banner"'


def _ready(client) -> tuple[str, dict]:
    response = client.get("/health/ready")
    assert response.status_code == 200
    report = response.json()
    return report["status"], report["checks"]["backups"]


def _hours_ago(hours: float):
    return timezone.now() - timedelta(hours=hours)


# --- Readiness


@pytest.mark.django_db
def test_fresh_install_without_backups_is_degraded_but_ready(client):
    status, check = _ready(client)
    assert status == "degraded"
    assert (check["ok"], check["required"], check["detail"]) == (False, False, "no successful backup yet")


@pytest.mark.django_db
def test_failed_backups_alone_do_not_count_as_a_backup(client):
    backup_at(_hours_ago(1), BackupStatus.FAILED)
    assert _ready(client)[1]["detail"] == "no successful backup yet"


@pytest.mark.django_db
def test_backup_older_than_the_limit_is_degraded(client, settings):
    settings.BACKUP_MAX_AGE_HOURS = 26
    old = backup_at(_hours_ago(30))

    status, check = _ready(client)

    assert (status, check["ok"]) == ("degraded", False)
    assert check["detail"] == f"last successful backup #{old.pk} is 30.0 h old (at most 26 h allowed)"


@pytest.mark.django_db
def test_failed_last_verification_is_degraded_even_with_a_fresh_backup(client):
    backup_at(_hours_ago(1))
    broken = backup_at(_hours_ago(50), BackupStatus.VERIFY_FAILED)
    Backup.objects.filter(pk=broken.pk).update(
        verified_at=_hours_ago(0.5), error="Checksum mismatch: the stored file was changed or corrupted.\nDetails"
    )

    status, check = _ready(client)

    assert (status, check["ok"]) == ("degraded", False)
    assert check["detail"] == (
        f"verification of backup #{broken.pk} failed: Checksum mismatch: the stored file was changed or corrupted."
    )


@pytest.mark.django_db
def test_old_backup_and_failed_verification_are_both_reported(client):
    old = backup_at(_hours_ago(40))
    broken = backup_at(_hours_ago(45), BackupStatus.VERIFY_FAILED)

    detail = _ready(client)[1]["detail"]

    assert detail.startswith(f"last successful backup #{old.pk} is 40.0 h old")
    assert detail.endswith(f"; verification of backup #{broken.pk} failed: no reason recorded")


@pytest.mark.django_db
def test_a_later_passed_verification_clears_an_earlier_failure(client):
    broken = backup_at(_hours_ago(60), BackupStatus.VERIFY_FAILED)
    Backup.objects.filter(pk=broken.pk).update(verified_at=_hours_ago(20))
    fresh = backup_at(_hours_ago(2), BackupStatus.VERIFIED)

    status, check = _ready(client)

    assert (status, check["ok"]) == ("ok", True)
    assert (
        check["detail"]
        == f"last successful backup #{fresh.pk} 2.0 h ago; last verification passed (backup #{fresh.pk})"
    )


@pytest.mark.django_db
def test_an_older_backup_passing_later_does_not_clear_a_newer_ones_failure(client):
    newest = backup_at(_hours_ago(3), BackupStatus.VERIFY_FAILED)
    older = backup_at(_hours_ago(100), BackupStatus.VERIFIED)
    Backup.objects.filter(pk=older.pk).update(verified_at=timezone.now())

    check = _ready(client)[1]

    assert check["ok"] is False
    assert check["detail"].endswith(f"verification of backup #{newest.pk} failed: no reason recorded")


@pytest.mark.django_db
def test_a_failure_of_an_older_backup_stands_until_a_newer_backup_passes_after_it(client):
    newest = backup_at(_hours_ago(3), BackupStatus.VERIFIED)
    older = backup_at(_hours_ago(100), BackupStatus.VERIFY_FAILED)
    Backup.objects.filter(pk=older.pk).update(verified_at=_hours_ago(1), error="truncated: the file ends early")

    assert _ready(client)[1]["detail"] == f"verification of backup #{older.pk} failed: truncated: the file ends early"

    Backup.objects.filter(pk=newest.pk).update(verified_at=timezone.now())
    assert _ready(client)[0] == "ok"


@pytest.mark.django_db
def test_fresh_unverified_backup_is_ok(client):
    fresh = backup_at(_hours_ago(3))

    status, check = _ready(client)
    assert (status, check["ok"]) == ("ok", True)
    assert check["detail"] == f"last successful backup #{fresh.pk} 3.0 h ago; not verified yet"


# --- The admin banner


@pytest.mark.django_db
def test_admin_shows_the_banner_on_every_page_while_backups_are_degraded(client, superuser):
    otp_force_login(client, superuser)
    for url in ("/admin/", "/admin/core/maintenancerun/", "/admin/audit/auditevent/"):
        page = client.get(url).content.decode()
        assert BANNER in page, url
        assert "Backups need attention: no successful backup yet." in page

    old = backup_at(_hours_ago(30))
    page = client.get("/admin/").content.decode()
    assert f"Backups need attention: last successful backup #{old.pk} is 30.0 h old" in page


@pytest.mark.django_db
def test_admin_shows_no_banner_when_backups_are_healthy(client, superuser):
    backup_at(_hours_ago(1), BackupStatus.VERIFIED)
    otp_force_login(client, superuser)

    page = client.get("/admin/").content.decode()

    assert "| Opsdeck</title>" in page
    assert BANNER not in page


@pytest.mark.django_db
def test_login_page_shows_no_backup_banner_to_anonymous_visitors(client):
    page = client.get("/admin/login/", follow=True).content.decode()
    assert "Sign in · Opsdeck</title>" in page
    assert BANNER not in page


@pytest.mark.django_db
def test_banner_is_not_shown_to_signed_in_users_who_are_not_staff(viewer_user):
    request = RequestFactory().get("/admin/")
    request.user = viewer_user
    html = Template("{% load backup_status %}{% backups_health_banner %}").render(Context({"request": request}))
    assert BANNER not in html


# --- Metrics


@pytest.mark.django_db
def test_recorded_backup_and_verification_appear_on_metrics(client):
    backup = backup_at(_hours_ago(5))
    Backup.objects.filter(pk=backup.pk).update(size_bytes=123_456, duration_seconds=42.5)
    backup.refresh_from_db()
    backup_metrics_record(backup)

    text = client.get("/metrics").content.decode()
    assert _sample(text, "backup_last_success_timestamp_seconds") == backup.finished_at.timestamp()
    assert _sample(text, "backup_size_bytes") == 123_456
    assert _sample(text, "backup_duration_seconds") == 42.5

    # Verifying an older backup moves only the verification gauge.
    older = backup_at(_hours_ago(30), BackupStatus.VERIFIED)
    backup_metrics_record(older)
    text = client.get("/metrics").content.decode()
    assert _sample(text, "backup_last_verified_timestamp_seconds") == older.verified_at.timestamp()
    assert _sample(text, "backup_last_success_timestamp_seconds") == backup.finished_at.timestamp()


@pytest.mark.django_db
def test_failed_outcomes_leave_the_gauges_alone(client):
    good = backup_at(_hours_ago(5), BackupStatus.VERIFIED)
    backup_metrics_record(good)
    backup_metrics_record(backup_at(_hours_ago(1), BackupStatus.FAILED))
    backup_metrics_record(backup_at(_hours_ago(2), BackupStatus.VERIFY_FAILED))

    text = client.get("/metrics").content.decode()
    assert _sample(text, "backup_last_verified_timestamp_seconds") == good.verified_at.timestamp()


@pytest.mark.django_db
def test_readiness_probe_sets_the_gauges_from_the_database(client):
    newest = backup_at(_hours_ago(4))
    verified = backup_at(_hours_ago(28), BackupStatus.VERIFIED)
    backup_at(_hours_ago(1), BackupStatus.FAILED)

    client.get("/health/ready")

    text = client.get("/metrics").content.decode()
    assert _sample(text, "backup_last_success_timestamp_seconds") == newest.finished_at.timestamp()
    assert _sample(text, "backup_last_verified_timestamp_seconds") == verified.verified_at.timestamp()
    assert _sample(text, "backup_size_bytes") == 5
    assert _sample(text, "backup_duration_seconds") == 1.5


@pytest.mark.django_db
def test_readiness_probe_zeroes_the_gauges_when_there_is_no_backup(client):
    backup_metrics_record(backup_at(_hours_ago(4)))
    Backup.objects.all().delete()

    client.get("/health/ready")

    text = client.get("/metrics").content.decode()
    assert _sample(text, "backup_last_success_timestamp_seconds") == 0
    assert _sample(text, "backup_last_verified_timestamp_seconds") == 0


# --- The nightly task


@pytest.mark.django_db(transaction=True)
def test_nightly_task_makes_a_scheduled_backup_and_records_its_run(client, backup_dir):
    backup_create_nightly.apply()

    backup = Backup.objects.get()
    assert (backup.status, backup.trigger) == (BackupStatus.COMPLETED, "schedule")
    assert (backup_dir / backup.path).stat().st_size == backup.size_bytes
    # Run as a job (its row, audit and live progress; requeued if this worker were lost).
    job = BackupJob.objects.get()
    assert (job.operation, job.status, job.owner, job.backup_id, job.attempts) == (
        "create",
        "completed",
        None,
        backup.pk,
        1,
    )
    run = MaintenanceRun.objects.get(task_name="maintenance.backup_create_nightly")
    assert run.status == MaintenanceStatus.SUCCEEDED
    assert run.message.startswith(f"Backup #{backup.pk} completed: {backup.size_bytes} bytes in ")
    assert _ready(client)[1]["ok"] is True


# --- The weekly verification


@pytest.fixture
def backup_dir(tmp_path, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    return tmp_path


@pytest.mark.django_db(transaction=True)
def test_weekly_task_verifies_the_newest_and_an_older_backup_and_fails_its_run_on_a_corrupt_one(client, backup_dir):
    older, newest = backup_create(trigger="schedule"), backup_create(trigger="schedule")
    backup_verify_weekly.apply()

    run = MaintenanceRun.objects.get(task_name="maintenance.backup_verify_weekly")
    assert (run.status, run.message) == (
        MaintenanceStatus.SUCCEEDED,
        f"Verified: backup #{newest.pk} passed; backup #{older.pk} passed.",
    )
    assert set(Backup.objects.values_list("status", flat=True)) == {BackupStatus.VERIFIED}
    verify_jobs = BackupJob.objects.filter(operation="verify", status="completed")
    assert set(verify_jobs.values_list("backup_id", flat=True)) == {older.pk, newest.pk}

    stored = backup_dir / newest.path
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    assert backup_verify_weekly.apply().failed()

    run = MaintenanceRun.objects.filter(task_name="maintenance.backup_verify_weekly").order_by("-id").first()
    assert run.status == MaintenanceStatus.FAILED
    assert f"Verification failed: backup #{newest.pk} failed: " in run.message
    status, check = _ready(client)
    assert (status, check["ok"]) == ("degraded", False)
    # The older backup passing after the newest failed does not clear the failure.
    assert check["detail"].startswith(f"verification of backup #{newest.pk} failed: ")
    assert "checksum" in check["detail"]
