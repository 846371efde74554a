"""A backup job's admin page follows the job live in a real browser, and shows its final record at the end."""

import threading

import pytest
from playwright.sync_api import expect

from apps.backups.models import BackupJob
from apps.jobs.kinds import job_kind
from apps.jobs.lifecycle import Outcome, jobs_finish
from apps.jobs.publishing import jobs_publish
from tests.backups.conftest import backup_row
from tests.mfa import browser_admin_sign_in, totp_device_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def running_job(superuser):
    key = totp_device_create(superuser).key
    job = BackupJob.objects.create(
        operation="create", backup=backup_row(status="running"), owner=superuser, status="running", attempts=1
    )
    return key, job


def _in_a_thread(work) -> None:
    """Database work from the test while Playwright's event loop runs in this thread (Django refuses it here)."""
    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)


def _progress(job: BackupJob, size: int) -> None:
    job = BackupJob.objects.select_related("owner").get(pk=job.pk)
    job.progress_done = size
    job.save(update_fields=["progress_done", "updated_at"])
    jobs_publish(job_kind("backup"), [job])


def test_the_job_page_shows_bytes_written_live_and_the_final_record_once_done(
    asgi_live_server, superuser, password, running_job, chromium
):
    key, job = running_job
    page = chromium.new_page(viewport={"width": 390, "height": 900})
    page.goto(asgi_live_server + "/admin/")
    browser_admin_sign_in(page, asgi_live_server, username=superuser.username, password=password, key_hex=key)
    page.goto(f"{asgi_live_server}/admin/backups/backupjob/{job.pk}/change/")
    expect(page.locator("#job-live")).to_have_text("Live: status and bytes written update as the worker goes.")
    expect(page.locator(".field-written .readonly")).to_have_text("0\xa0bytes")

    _in_a_thread(lambda: _progress(job, 5 * 2**20))
    expect(page.locator(".field-written .readonly")).to_have_text("5.0\xa0MB")
    expect(page.locator(".field-status .readonly")).to_have_text("Running")

    _in_a_thread(lambda: jobs_finish(job_kind("backup"), {job.pk: Outcome("completed")}))
    expect(page.locator("#job-live")).to_have_count(0)  # reloaded: a finished job has no live line
    expect(page.locator(".field-status .readonly")).to_have_text("Completed")
