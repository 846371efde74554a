"""A new administrator's first session, in headless Chromium against the real ASGI app, Redis channel layer and a
Celery worker, typing one address only (the sign-in page) and otherwise clicking links and buttons and filling forms:
sign in, enroll an authenticator, submit a quantum job and watch it complete, register a model, upload a version and
try it, take a backup and verify it, generate a compliance report, download it and verify it as an auditor would.

Screenshots of every step land in var/screenshots/walkthrough-NN-<step>.png, to be looked at.
"""

import base64
import hashlib
import json
import re
from base64 import b32decode
from binascii import hexlify
from pathlib import Path
from urllib.parse import urljoin

import pytest
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from playwright.sync_api import expect

from tests.helpers import manifest_signed_bytes
from tests.mfa import totp_code
from tests.quantum_circuits import slow_qasm2
from tests.registry_models import build_tiny_classifier, pack_zip

pytestmark = [
    pytest.mark.browser,
    pytest.mark.pages,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("roles", "registry_storage", "backup_dir"),
]

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
LAPTOP = {"width": 1366, "height": 900}
NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
# Long work: a statevector simulation of seconds, a pg_dump and its restore, a signed PDF.
WORK_TIMEOUT_MS = 120_000


class Walk:
    """The browser tab of the walk-through: every address it types and every page it lands on are recorded, and
    each step is photographed."""

    def __init__(self, page):
        self.page = page
        self.typed: list[str] = []
        self.landed: list[str] = []
        self.steps = 0
        page.on("framenavigated", lambda frame: frame == page.main_frame and self.landed.append(frame.url))
        goto = page.goto

        def typed_goto(url: str, **options):
            self.typed.append(url)
            return goto(url, **options)

        page.goto = typed_goto

    def photograph(self, step: str, *, full_page: bool = True) -> None:
        self.steps += 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=SCREENSHOTS / f"walkthrough-{self.steps:02d}-{step}.png", full_page=full_page)
        assert self.page.evaluate(NO_SIDEWAYS_SCROLL), f"{step} scrolls sideways"

    def open_area(self, title: str, landing: str) -> None:
        """Follow the sidebar's link to a portal area."""
        self.page.locator("#nav-sidebar-apps").get_by_role("link", name=title, exact=True).click()
        self.page.wait_for_url(landing)

    def mark_document(self) -> None:
        """From here on, the page must change without being loaded again."""
        self.page.evaluate("window.__sameDocument = true")

    def assert_same_document(self) -> None:
        assert self.page.evaluate("window.__sameDocument") is True, "the page was loaded again"


def _sign_in_and_enroll(walk: Walk, base: str, user, password: str) -> str:
    """Password, then the authenticator set up from the key the page shows; the hex key for later codes."""
    page = walk.page
    page.goto(base + "/accounts/login/")
    walk.photograph("sign-in")
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")
    page.wait_for_url("**/account/mfa/enroll/**")
    expect(page.locator("main")).to_contain_text("Your role requires two-factor authentication.")
    walk.photograph("mfa-enroll")
    key_hex = hexlify(b32decode(page.locator("#manual-key").inner_text().strip())).decode()
    page.fill("#id_code", totp_code(key_hex))
    page.click("main button[type=submit]")
    page.wait_for_url("**/account/mfa/recovery-codes/**")
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    walk.photograph("recovery-codes")
    page.click("text=I have saved these codes")
    page.wait_for_url(base + "/dashboard/")
    return key_hex


def _quantum_job(walk: Walk, base: str) -> None:
    page = walk.page
    walk.photograph("dashboard")
    page.fill("#id_source", slow_qasm2(qubits=20))
    page.click("#submit-job button[type=submit]")
    link = page.locator("#submit-result a")
    expect(link).to_have_text(re.compile(r"#\d+"), timeout=15_000)
    link.click()
    page.wait_for_url(re.compile(re.escape(base) + r"/dashboard/jobs/\d+/$"))
    walk.mark_document()
    assert page.locator("#histogram").count() == 0  # not finished when the page was rendered
    expect(page.locator("#job-status")).not_to_have_text("completed")
    # The page draws the circuit, metres long for this one: the screen as the administrator sees it.
    walk.photograph("quantum-job-running", full_page=False)
    expect(page.locator("#job-status")).to_have_text("completed", timeout=WORK_TIMEOUT_MS)
    expect(page.locator("#histogram svg.histogram")).to_be_visible()
    walk.assert_same_document()
    walk.photograph("quantum-job-completed", full_page=False)


def _model(walk: Walk, base: str, artifact: bytes) -> None:
    page = walk.page
    walk.open_area("Registry", base + "/registry/")
    walk.photograph("registry")
    page.fill("#id_name", "ticket-sentiment")
    page.select_option("#id_task", "text-classification")
    page.fill("#id_description", "Tells happy tickets from unhappy ones.")
    page.click("#register button[type=submit]")
    page.wait_for_url(base + "/registry/ticket-sentiment/")
    page.set_input_files(
        "#id_artifact", {"name": "ticket-sentiment.zip", "mimeType": "application/zip", "buffer": artifact}
    )
    walk.photograph("registry-upload")
    page.click("#version-upload-form button[type=submit]")
    page.wait_for_url(base + "/registry/ticket-sentiment/#versions")
    status = page.locator('#version-table tr[data-version="1"] [data-cell="version-status"] .pill')
    expect(status).to_have_text("ready", timeout=WORK_TIMEOUT_MS)
    # Validated before the page came back, the version is offered at once; else the page says to reload it.
    if page.locator("#try-it-form").count() == 0:
        expect(page.locator("#version-ready")).to_contain_text("v1 is ready")
        page.click("#version-ready-reload")
    page.fill("#try-it-texts", "the service is great and fast\nthe queue is stuck again")
    page.click("#try-it-form button[type=submit]")
    expect(page.locator("#try-it-answered")).to_have_text("Answered by v1.")
    outputs = page.locator("#try-it-outputs tbody tr")
    expect(outputs).to_have_count(2)
    expect(outputs.first.locator("td").nth(1)).to_have_text(re.compile(r"^(negative|positive)$"))
    walk.photograph("registry-try-it")


def _backup(walk: Walk, base: str) -> None:
    page = walk.page
    walk.open_area("Backups", base + "/backups/")
    walk.photograph("backups")
    page.click("#backup-create button")
    page.wait_for_url(re.compile(re.escape(base) + r"/backups/jobs/\d+/$"))
    expect(page.locator("#job-status")).to_have_text("completed", timeout=WORK_TIMEOUT_MS)
    expect(page.locator("#job-backup")).to_be_visible()
    walk.photograph("backup-taken")
    page.click("#job-backup")
    expect(page.locator("#verification-none")).to_be_visible()
    page.click("#backup-verify button")
    page.wait_for_url(re.compile(re.escape(base) + r"/backups/jobs/\d+/$"))
    expect(page.locator("#job-status")).to_have_text("completed", timeout=WORK_TIMEOUT_MS)
    checks = page.locator("#verification-checklist .check")
    expect(checks).not_to_have_count(0)
    expect(page.locator("#verification-checklist .check-passed")).to_have_count(checks.count())
    expect(page.locator("#verification-summary")).to_contain_text("The backup restores and holds the recorded rows.")
    walk.photograph("backup-verified")


def _report(walk: Walk, base: str) -> None:
    page = walk.page
    walk.open_area("Compliance", base + "/compliance/")
    page.select_option("#id_kind", "backup_evidence")
    page.click("text=Last 7 days")
    page.select_option("#id_format", "pdf")
    walk.photograph("compliance")
    page.click("#report-generate")
    page.wait_for_url(base + "/compliance/")
    report_id = re.search(r"Report #(\d+)", page.locator("#messages").inner_text()).group(1)
    row = page.locator(f'tr[data-report-id="{report_id}"]')
    expect(row.locator(".report-status")).to_have_text("Completed", timeout=WORK_TIMEOUT_MS)
    walk.photograph("compliance-report-completed")
    row.locator('[data-cell="id"] a').click()
    page.wait_for_url(f"{base}/compliance/reports/{report_id}/")
    walk.photograph("compliance-report")

    # As an auditor: the file, its manifest and the public key the page links to; nothing of the portal's code.
    with page.expect_download() as report_download:
        page.click("#report-download")
    with page.expect_download() as manifest_download:
        page.click("#manifest-download")
    data = report_download.value.path().read_bytes()
    manifest = json.loads(manifest_download.value.path().read_bytes())
    public_key_url = urljoin(page.url, page.locator("#report-verify a").get_attribute("href"))
    public_key = serialization.load_pem_public_key(page.request.get(public_key_url).body())

    assert data.startswith(b"%PDF-")
    assert report_download.value.suggested_filename == manifest["file_name"]
    assert hashlib.sha256(data).hexdigest() == manifest["sha256"]
    assert len(data) == manifest["size_bytes"]
    raw_key = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert hashlib.sha256(raw_key).hexdigest() == manifest["key_fingerprint"]
    assert page.locator("#manifest-fingerprint").text_content() == manifest["key_fingerprint"]
    public_key.verify(base64.b64decode(manifest["signature"]), manifest_signed_bytes(manifest))  # raises if not


def test_new_administrator_walks_through_the_portal_typing_one_address(
    asgi_live_server, celery_worker, admin_user, password, tmp_path, chromium
):
    artifact = pack_zip(build_tiny_classifier(tmp_path / "model"))
    context = chromium.new_context(viewport=LAPTOP, accept_downloads=True)
    page = context.new_page()
    script_errors = []
    page.on("pageerror", lambda error: script_errors.append(f"{page.url}: {error.stack}"))
    walk = Walk(page)

    _sign_in_and_enroll(walk, asgi_live_server, admin_user, password)
    _quantum_job(walk, asgi_live_server)
    _model(walk, asgi_live_server, artifact)
    _backup(walk, asgi_live_server)
    _report(walk, asgi_live_server)

    assert walk.typed == [asgi_live_server + "/accounts/login/"]
    assert all(url.startswith(asgi_live_server + "/") for url in walk.landed), walk.landed
    assert script_errors == [], "\n".join(script_errors)
    context.close()
