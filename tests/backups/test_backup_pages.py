"""The backups pages at /backups/: who may use them (the API's and the admin's rules), the list with its health
and pagination, "Back up now", "Verify" and "Restore" as jobs (post/redirect/get, with the services' refusals as
messages), downloads in the sudo window, and a real verification shown as a checklist."""

from datetime import timedelta
from urllib.parse import quote

import pytest
from django.contrib.messages import get_messages
from django.template.defaultfilters import filesizeformat
from django.test import Client
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.backups.choices import BackupStatus
from apps.backups.jobs import backup_job_request
from apps.backups.models import Backup, BackupJob
from apps.backups.restore import backup_verify
from apps.backups.tasks import run_job
from apps.backups.views import BACKUPS_PER_PAGE
from apps.core.formatting import local_time
from apps.jobs.kinds import job_kind
from apps.jobs.lifecycle import Outcome, jobs_finish
from tests.backups.conftest import backup_row
from tests.jobs.test_queue_unavailable import broker_down_context
from tests.mfa import otp_force_login, sudo_force_login

INDEX = "/backups/"
CREATE = "/backups/create/"


def _detail(pk: int) -> str:
    return f"/backups/{pk}/"


def _job(pk: int) -> str:
    return f"/backups/jobs/{pk}/"


def _messages(response) -> list[tuple[str, str]]:
    return [(message.level_tag, str(message)) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def sudo_client(client, roles, admin_user):
    sudo_force_login(client, admin_user)
    return client


# --- Who may use the pages


@pytest.mark.django_db
@pytest.mark.parametrize("role_user", ["operator_user", "viewer_user", "outsider_user"])
def test_people_without_a_backup_role_are_refused_everywhere(client, roles, role_user, request):
    client.force_login(request.getfixturevalue(role_user))
    backup = backup_row()
    job = BackupJob.objects.create(operation="create", backup=backup)

    for url in (INDEX, _detail(backup.pk), f"/backups/{backup.pk}/restore/", f"/backups/{backup.pk}/download/"):
        assert client.get(url).status_code == 403, url
    assert client.get(f"/backups/{backup.pk}/manifest/").status_code == 403
    assert client.get(_job(job.pk)).status_code == 403
    assert client.post(CREATE).status_code == 403
    assert client.post(f"/backups/{backup.pk}/verify/").status_code == 403
    assert BackupJob.objects.count() == 1


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(INDEX)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_compliance_officer_reads_the_list_and_a_backup_but_has_no_actions(client, roles, compliance_user):
    otp_force_login(client, compliance_user)
    backup = backup_row(status=BackupStatus.VERIFIED)

    listing = client.get(INDEX)
    page = client.get(_detail(backup.pk))

    assert (listing.status_code, page.status_code) == (200, 200)
    assert 'id="backup-create"' not in listing.content.decode()
    assert 'id="backup-actions"' not in page.content.decode()
    assert backup.sha256 in page.content.decode()
    assert client.post(CREATE).status_code == 403
    assert client.post(f"/backups/{backup.pk}/verify/").status_code == 403
    assert client.get(f"/backups/{backup.pk}/restore/").status_code == 403
    assert client.get(f"/backups/{backup.pk}/download/").status_code == 403
    assert not BackupJob.objects.exists()


@pytest.mark.django_db
def test_a_backup_or_job_that_does_not_exist_is_a_404(admin_client):
    assert admin_client.get(_detail(999)).status_code == 404
    assert admin_client.get(_job(999)).status_code == 404
    assert admin_client.post("/backups/999/verify/").status_code == 404


# --- The list


@pytest.mark.django_db
def test_list_shows_status_badges_size_duration_trigger_key_and_the_health(admin_client, admin_user):
    verified = backup_row(
        status=BackupStatus.VERIFIED,
        duration_seconds=4.25,
        size_bytes=5 * 2**20,
        verified_at=timezone.now() - timedelta(hours=2, minutes=1),
    )
    failed = backup_row(status=BackupStatus.FAILED, size_bytes=None, error="pg_dump failed (exit 1): boom")
    mine = backup_row(trigger="user", triggered_by=admin_user, key_id="feedfacecafebeef")

    page = admin_client.get(INDEX).content.decode()

    assert page.index(f'data-backup-id="{mine.pk}"') < page.index(f'data-backup-id="{verified.pk}"')
    assert '<span class="badge badge-verified">verified by a restore</span>' in page
    assert '<span class="badge badge-failed">failed</span>' in page
    assert '<span class="badge badge-completed">completed</span>' in page
    assert filesizeformat(5 * 2**20) in page
    assert "4.2 s" in page
    assert "A user (alice-admin)" in page
    assert "<code>feedfacecafebeef</code>" in page
    assert f'href="{_detail(failed.pk)}"' in page
    assert 'id="backups-health-status">healthy<' in page
    assert f"Last successful backup #{mine.pk}".lower() in page.lower()
    assert f'<a href="{_detail(verified.pk)}">#{verified.pk}</a>, verified {local_time(verified.verified_at)}' in page
    assert 'id="backup-create"' in page


@pytest.mark.django_db
def test_list_health_names_what_needs_attention(admin_client):
    backup_row(status=BackupStatus.VERIFY_FAILED, error="row counts differ in 1 table")

    page = admin_client.get(INDEX).content.decode()

    assert 'id="backups-health-status">needs attention<' in page
    assert "No successful backup yet; verification of backup" in page
    assert "row counts differ in 1 table" in page


@pytest.mark.django_db
def test_list_without_backups_says_how_to_get_the_first(admin_client):
    page = admin_client.get(INDEX).content.decode()

    assert 'id="backups-empty"' in page
    assert "“Back up now” takes the first one" in page
    assert "backups-table" not in page


@pytest.mark.django_db
def test_list_is_paginated_newest_first_and_odd_page_numbers_never_fail(admin_client):
    backups = [backup_row() for _ in range(BACKUPS_PER_PAGE + 3)]

    first = admin_client.get(INDEX).content.decode()
    second = admin_client.get(INDEX + "?page=2").content.decode()

    assert first.count("data-backup-id=") == BACKUPS_PER_PAGE
    assert second.count("data-backup-id=") == 3
    assert f'data-backup-id="{backups[-1].pk}"' in first
    assert f'data-backup-id="{backups[0].pk}"' in second
    assert "Page 2 of 2" in second
    assert admin_client.get(INDEX + "?page=abc").status_code == 200
    assert "Page 2 of 2" in admin_client.get(INDEX + "?page=99999999999999999999").content.decode()


@pytest.mark.django_db
def test_list_shows_the_jobs_under_way_with_links_to_follow_them(admin_client, admin_user):
    job = BackupJob.objects.create(operation="create", owner=admin_user)

    page = admin_client.get(INDEX).content.decode()

    assert f'<a href="{_job(job.pk)}">Backup job #{job.pk}</a>' in page
    assert "asked by alice-admin" in page


# --- Back up now, verify


def test_back_up_now_queues_a_job_and_redirects_to_its_page_which_shows_the_new_backup(
    transactional_db, admin_client, backup_dir
):
    response = admin_client.post(CREATE)

    [job] = BackupJob.objects.all()
    assert (job.operation, job.status, job.owner.username) == ("create", "queued", "alice-admin")
    assert (response.status_code, response["Location"]) == (302, _job(job.pk))
    page = admin_client.get(response["Location"])
    [(level, text)] = _messages(page)
    assert (level, text) == ("success", f"{job} is queued: a worker takes the backup, and this page follows it.")
    html = page.content.decode()
    assert f'data-socket-path="/ws/jobs/backup/{job.pk}/"' in html
    assert "backups/backups.js" in html

    run_job.apply(args=[job.pk])

    job.refresh_from_db()
    html = admin_client.get(_job(job.pk)).content.decode()
    assert f'href="{_detail(job.backup_id)}" id="job-backup">Backup #{job.backup_id}</a>' in html
    assert filesizeformat(job.backup.size_bytes) in html
    assert "backups/backups.js" not in html  # a finished job is not followed any more


@pytest.mark.django_db
def test_back_up_now_is_a_post_and_needs_the_csrf_token(roles, admin_user):
    browser = Client(enforce_csrf_checks=True)
    otp_force_login(browser, admin_user)

    assert browser.get(CREATE).status_code == 405
    assert browser.post(CREATE).status_code == 403
    assert not BackupJob.objects.exists()


def test_back_up_now_without_a_key_says_which_setting_and_queues_nothing(transactional_db, admin_client, settings):
    settings.BACKUP_ENCRYPTION_KEY = None

    response = admin_client.post(CREATE, follow=True)

    assert response.redirect_chain == [(INDEX, 302)]
    [(level, text)] = _messages(response)
    assert level == "error"
    assert text.startswith("No backup was taken: ")
    assert "BACKUP_ENCRYPTION_KEY" in text
    assert not BackupJob.objects.exists()


def test_back_up_now_while_the_task_queue_is_down_says_so_and_leaves_the_job_failed(
    transactional_db, admin_client, backup_dir
):
    with broker_down_context():
        response = admin_client.post(CREATE, follow=True)

    assert response.redirect_chain == [(INDEX, 302)]
    [(level, text)] = _messages(response)
    assert level == "error"
    assert "task queue is unavailable" in text
    [job] = BackupJob.objects.all()
    assert job.status == "failed"


@pytest.mark.django_db
def test_verify_of_a_backup_without_a_file_is_refused_with_the_reason(admin_client):
    failed = backup_row(status=BackupStatus.FAILED)

    response = admin_client.post(f"/backups/{failed.pk}/verify/", follow=True)

    assert response.redirect_chain == [(_detail(failed.pk), 302)]
    [(level, text)] = _messages(response)
    assert level == "error"
    assert f"Backup #{failed.pk} is failed: only completed backups can be verified." in text
    assert not BackupJob.objects.exists()


def test_verify_queues_a_job_whose_page_shows_the_checklist_once_done(transactional_db, admin_client, stored_backup):
    response = admin_client.post(f"/backups/{stored_backup.pk}/verify/")

    [job] = BackupJob.objects.all()
    assert (job.operation, job.backup_id) == ("verify", stored_backup.pk)
    assert response["Location"] == _job(job.pk)
    assert 'id="verification-checklist"' not in admin_client.get(_job(job.pk)).content.decode()

    run_job.apply(args=[job.pk])

    html = admin_client.get(_job(job.pk)).content.decode()
    assert html.count('class="check check-passed"') == 4
    assert '<span class="badge badge-verified">verified by a restore</span>' in html


def test_a_failed_job_shows_why_and_is_no_longer_followed(transactional_db, admin_client, admin_user):
    job = backup_job_request("create", admin_user)
    reason = "pg_dump failed (exit 1): could not connect to the server"
    jobs_finish(job_kind("backup"), {job.pk: Outcome("failed", reason)})

    html = admin_client.get(_job(job.pk)).content.decode()

    assert '<span class="badge badge-failed" id="job-status"' in html
    assert f'<p class="error" id="job-error" role="alert">{reason}</p>' in html
    assert "backups/backups.js" not in html


@pytest.mark.django_db
def test_a_queued_job_is_cancelled_from_its_page_and_a_finished_one_says_there_is_nothing_to_cancel(
    admin_client, admin_user
):
    job = BackupJob.objects.create(operation="create", owner=admin_user)
    assert 'id="job-cancel"' in admin_client.get(_job(job.pk)).content.decode()

    response = admin_client.post(f"/backups/jobs/{job.pk}/cancel/", follow=True)

    assert response.redirect_chain == [(_job(job.pk), 302)]
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert _messages(response) == [("success", f"{job} is cancelled.")]
    assert 'id="job-cancel"' not in response.content.decode()
    again = admin_client.post(f"/backups/jobs/{job.pk}/cancel/", follow=True)
    assert _messages(again) == [
        ("error", f"Not cancelled: Job #{job.pk} is already cancelled; there is nothing to cancel.")
    ]


@pytest.mark.django_db
def test_only_administrators_cancel_backup_jobs(client, roles, compliance_user, admin_user):
    otp_force_login(client, compliance_user)
    job = BackupJob.objects.create(operation="create", owner=admin_user)

    assert client.post(f"/backups/jobs/{job.pk}/cancel/").status_code == 403
    job.refresh_from_db()
    assert job.status == "queued"


# --- A backup's page: the checklist from real verifications


def test_a_verified_backup_shows_each_check_with_its_figure_and_never_raw_json(
    transactional_db, admin_client, stored_backup, admin_user
):
    backup_verify(backup=stored_backup, actor=admin_user)
    stored_backup.refresh_from_db()
    tables = len(stored_backup.row_counts)
    rows = sum(stored_backup.row_counts.values())

    html = admin_client.get(_detail(stored_backup.pk)).content.decode()

    start = html.index('id="verification-checklist"')
    checklist = html[start : html.index("</ol>", start)]
    assert checklist.count("check-passed") == 4
    assert checklist.count("✓") == 4
    assert f"{stored_backup.size_bytes:,} bytes, SHA-256 {stored_backup.sha256}" in checklist
    assert f"key {stored_backup.key_id}" in checklist
    assert "restored into opsdeck_verify_" in checklist
    assert f"{tables:,} tables, {rows:,} rows, as recorded" in checklist
    assert "The backup restores and holds the recorded rows." in html
    assert '"checks"' not in html
    assert "tables_compared" not in html
    # The manifest's facts and the tables' rows.
    assert stored_backup.sha256 in html
    assert "AES-256-GCM" in html
    assert html.count("<tr><td>") >= tables
    assert f'href="/backups/{stored_backup.pk}/download/"' in html
    assert f'href="/backups/{stored_backup.pk}/restore/"' in html


def test_a_failed_verification_marks_the_failed_check_and_the_ones_not_run(
    transactional_db, admin_client, stored_backup, backup_dir, admin_user
):
    path = backup_dir / stored_backup.path
    path.write_bytes(path.read_bytes()[:100])
    backup_verify(backup=stored_backup, actor=admin_user)

    html = admin_client.get(_detail(stored_backup.pk)).content.decode()

    start = html.index('id="verification-checklist"')
    checklist = html[start : html.index("</ol>", start)]
    assert checklist.count("check-failed") == 1
    assert checklist.count("✗") == 1
    assert f"truncated: 100 of {stored_backup.size_bytes} bytes" in checklist
    assert checklist.count("check-not_run") == 3
    assert "Verification failed" in html
    assert 'id="backup-restore"' not in html  # a backup that failed verification is not restorable


@pytest.mark.django_db
def test_a_backup_never_verified_says_so_and_offers_verify(admin_client):
    backup = backup_row()

    html = admin_client.get(_detail(backup.pk)).content.decode()

    assert 'id="verification-none"' in html
    assert 'id="backup-verify"' in html


# --- Restore, in the sudo window


@pytest.mark.django_db
def test_restore_without_a_fresh_code_goes_to_reauthentication_and_a_post_touches_nothing(admin_client):
    backup = backup_row()
    url = f"/backups/{backup.pk}/restore/"

    page = admin_client.get(url)
    refused = admin_client.post(url)

    assert page.status_code == 302
    assert page["Location"] == f"/account/reauthenticate/?next={quote(url, safe='')}"
    assert refused["Location"] == page["Location"]
    [(level, text)] = _messages(refused)
    assert level == "error"
    assert text.startswith("Nothing was restored: a restore needs your password and a fresh authenticator code.")
    assert not BackupJob.objects.exists()


def test_restore_confirmation_names_what_is_replaced_and_confirming_queues_the_job(
    transactional_db, sudo_client, stored_backup, settings
):
    url = f"/backups/{stored_backup.pk}/restore/"
    rows = sum(stored_backup.row_counts.values())

    page = sudo_client.get(url).content.decode()

    database = settings.DATABASES["default"]["NAME"]
    assert f"Every table of the database <strong><code>{database}</code></strong> is replaced" in page
    assert f"{len(stored_backup.row_counts)} tables and {rows} rows" in page
    assert "safety backup" in page
    response = sudo_client.post(url)
    [job] = BackupJob.objects.all()
    assert (job.operation, job.status, job.max_attempts) == ("restore", "queued", 1)
    assert response["Location"] == _job(job.pk)


@pytest.mark.django_db
def test_restore_of_a_backup_whose_file_is_missing_is_refused_with_the_reason(sudo_client, backup_dir):
    backup = backup_row(database_engine="postgresql")
    url = f"/backups/{backup.pk}/restore/"

    response = sudo_client.post(url, follow=True)

    assert response.redirect_chain == [(url, 302)]
    [(level, text)] = _messages(response)
    assert level == "error"
    assert text.startswith(f"Nothing was restored: Backup #{backup.pk} cannot be restored: missing")
    assert not BackupJob.objects.exists()


@pytest.mark.django_db
def test_restore_page_of_a_failed_backup_says_it_cannot_be_restored(sudo_client):
    backup = backup_row(status=BackupStatus.FAILED)

    html = sudo_client.get(f"/backups/{backup.pk}/restore/").content.decode()

    assert "cannot be restored: it is failed" in html
    assert 'id="restore-form"' not in html


# --- Downloads, in the sudo window


@pytest.mark.django_db
def test_download_without_a_fresh_code_reauthenticates_and_comes_back(admin_client):
    backup = backup_row()
    url = f"/backups/{backup.pk}/download/"

    response = admin_client.get(url)

    assert response["Location"] == f"/account/reauthenticate/?next={quote(url, safe='')}"
    assert not AuditEvent.objects.filter(action="backup.downloaded").exists()


def test_download_and_manifest_in_the_sudo_window_are_the_file_and_its_facts(
    transactional_db, sudo_client, stored_backup, backup_dir
):
    download = sudo_client.get(f"/backups/{stored_backup.pk}/download/")
    manifest = sudo_client.get(f"/backups/{stored_backup.pk}/manifest/")

    assert b"".join(download.streaming_content) == (backup_dir / stored_backup.path).read_bytes()
    assert download["X-Backup-SHA256"] == stored_backup.sha256
    assert manifest["Content-Disposition"] == f'attachment; filename="{stored_backup.path}.manifest.json"'
    body = manifest.json()
    assert (body["sha256"], body["key_id"], body["size_bytes"]) == (
        stored_backup.sha256,
        stored_backup.key_id,
        stored_backup.size_bytes,
    )
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"backup.downloaded", "backup.manifest_downloaded"} <= actions


@pytest.mark.django_db
def test_download_of_a_pruned_backup_says_why_there_is_nothing(sudo_client):
    pruned = backup_row(status=BackupStatus.PRUNED)

    response = sudo_client.get(f"/backups/{pruned.pk}/download/", follow=True)

    assert response.redirect_chain == [(_detail(pruned.pk), 302)]
    [(level, text)] = _messages(response)
    assert (level, text) == ("error", f"Nothing was downloaded: Backup #{pruned.pk} is pruned: it has no stored file.")
    assert Backup.objects.get().status == BackupStatus.PRUNED
