"""The backups pages in headless Chromium against the real ASGI app, Redis channel layer and a Celery worker: an
administrator takes a backup from /backups/ and watches its job reach "completed" live, then verifies it and reads
the checklist; every page is photographed at a desktop and a phone width, and none scrolls sideways on the phone."""

import pytest
from playwright.sync_api import expect

from tests.mfa import browser_sign_in, totp_device_create
from tests.shell_pages import LAPTOP, photograph_both_widths
from tests.workers import worker_running

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Every job.update a page's websockets receive, kept in the tab's sessionStorage: the job page reloads at the end.
UPDATES_RECORDER = """
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(url, protocols) {
    super(url, protocols);
    this.addEventListener("open", () => { window.__socketOpen = true; });
    this.addEventListener("message", (event) => {
      const data = JSON.parse(event.data);
      if (data.type !== "job.update") return;
      const seen = JSON.parse(sessionStorage.getItem("jobUpdates") || "[]");
      seen.push({ id: data.id, status: data.status, written: (data.progress || {}).bytes_written || 0 });
      sessionStorage.setItem("jobUpdates", JSON.stringify(seen));
    });
  }
};
"""


@pytest.fixture
def admin_key(admin_user):
    return totp_device_create(admin_user).key


def _photograph(page, name: str) -> None:
    """Screenshots at both widths (var/screenshots/, git-ignored); the phone's must not scroll sideways."""
    photograph_both_widths(page, f"backups-{name}")


def _job_updates(page, job_id: str) -> list[dict]:
    return [update for update in page.evaluate("JSON.parse(sessionStorage.getItem('jobUpdates') || '[]')")
            if str(update["id"]) == job_id]  # fmt: skip


def test_admin_takes_a_backup_watches_it_complete_live_then_verifies_it_and_reads_the_checklist(
    asgi_live_server, backup_dir, admin_user, admin_key, password, chromium
):
    page = chromium.new_page(viewport=LAPTOP)
    page.add_init_script(UPDATES_RECORDER)
    script_errors = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    page.goto(asgi_live_server + "/backups/")
    page.wait_for_url("**/accounts/login/?next=/backups/")
    browser_sign_in(
        page,
        username=admin_user.username,
        password=password,
        key_hex=admin_key,
        submit="main button[type=submit]",
        landing=asgi_live_server + "/backups/",
    )
    expect(page.locator("#backups-empty")).to_be_visible()
    expect(page.locator("#backups-health-status")).to_have_text("needs attention")
    _photograph(page, "list-empty")

    # No worker runs yet: the job waits in the queue while its page connects, so the page sees it progress.
    page.click("#backup-create button")
    page.wait_for_url("**/backups/jobs/*/")
    job_id = page.locator("#backup-job").get_attribute("data-job-id")
    expect(page.locator("#job-status")).to_have_text("queued")
    page.wait_for_function("() => window.__socketOpen === true")

    with worker_running():
        expect(page.locator("#job-status")).to_have_text("completed", timeout=60_000)
        expect(page.locator("#job-backup")).to_be_visible()  # the page reloaded at the end: the result shows
        statuses = [update["status"] for update in _job_updates(page, job_id)]
        assert statuses[0] == "queued"
        assert "running" in statuses
        assert statuses[-1] == "completed"
        assert _job_updates(page, job_id)[-1]["written"] > 0
        expect(page.locator("#job-written")).not_to_have_text("0\xa0bytes")
        _photograph(page, "job-created")

        page.click("#job-backup")
        expect(page.locator("h1 .badge")).to_have_text("completed")
        expect(page.locator("#verification-none")).to_be_visible()
        page.click("#backup-verify button")
        page.wait_for_url("**/backups/jobs/*/")
        expect(page.locator("#job-status")).to_have_text("completed", timeout=60_000)

    checklist = page.locator("#verification-checklist .check")
    expect(checklist).to_have_count(4)
    expect(page.locator("#verification-checklist .check-passed")).to_have_count(4)
    expect(page.locator("#verification-summary")).to_contain_text("The backup restores and holds the recorded rows.")
    expect(checklist.nth(3)).to_contain_text("rows, as recorded")
    _photograph(page, "job-verified")

    page.click("#job-backup")
    expect(page.locator("h1 .badge")).to_have_text("verified by a restore")
    expect(page.locator("#verification-checklist .check-passed")).to_have_count(4)
    _photograph(page, "detail")

    page.click("text=← Backups")
    expect(page.locator("#backups-health-status")).to_have_text("healthy")
    expect(page.locator("#backups-table tbody tr")).to_have_count(1)
    _photograph(page, "list")

    # Signing in with a code just now opened the sudo window: the restore asks only for confirmation.
    page.click("#backups-table a")
    page.click("#backup-restore")
    expect(page.locator("#restore-replaces")).to_contain_text("is replaced with the contents of backup #")
    _photograph(page, "restore")
    assert script_errors == []
