"""The compliance page in headless Chromium against the real ASGI app, Redis channel layer and a Celery worker:
an officer signs in with a code, picks a period, generates a report from the form, watches reports complete live,
reads a report's signed manifest on its page, copies its key fingerprint, and downloads a file and a manifest whose
signature verifies with only the public key."""

import base64
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import expect

from apps.compliance.services import previous_month
from apps.compliance.signing import key_fingerprint
from tests.browser_sockets import SOCKET_OPEN, SOCKET_RECORDER
from tests.helpers import AXE_SERIOUS, PAGE_POST_JSON, axe_add, manifest_signed_bytes
from tests.mfa import browser_sign_in, totp_device_create
from tests.shell_pages import LAPTOP, photograph_both_widths

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CLIPBOARD = "() => navigator.clipboard.readText()"


@pytest.fixture
def report_storage(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def officer_key(compliance_user):
    return totp_device_create(compliance_user).key


def _row(page, report_id):
    return page.locator(f'tr[data-report-id="{report_id}"]')


def _photograph(page, name: str) -> None:
    """Screenshots at both widths (var/screenshots/, git-ignored); the phone's must not scroll sideways, and the
    page has no serious or critical axe-core violation."""
    axe_add(page)
    assert page.evaluate(AXE_SERIOUS) == [], name
    photograph_both_widths(page, f"compliance-{name}")


def test_officer_generates_watches_live_and_downloads_a_verifiable_report(
    asgi_live_server, celery_worker, report_storage, compliance_user, officer_key, password, chromium
):
    fingerprint = key_fingerprint()
    start, end = previous_month()
    context = chromium.new_context(
        permissions=["clipboard-read", "clipboard-write"], viewport=LAPTOP, accept_downloads=True
    )
    page = context.new_page()
    page.add_init_script(SOCKET_RECORDER)
    page.goto(asgi_live_server + "/compliance/")
    page.wait_for_url("**/accounts/login/?next=/compliance/")
    browser_sign_in(
        page,
        username=compliance_user.username,
        password=password,
        key_hex=officer_key,
        submit="main button[type=submit]",
        landing=asgi_live_server + "/compliance/",
    )
    expect(page.locator("#key-fingerprint")).to_have_text(fingerprint)

    # The form shows only the filters the chosen kind understands; presets fill the two dates (UTC days).
    expect(page.locator('[data-field="action_prefix"]')).to_be_hidden()
    page.select_option("#id_kind", "audit_trail")
    expect(page.locator('[data-field="action_prefix"]')).to_be_visible()
    expect(page.locator("#id_start_date")).to_have_value(f"{start:%Y-%m-%d}")
    expect(page.locator("#id_end_date")).to_have_value(f"{(end - timedelta(days=1)):%Y-%m-%d}")
    expect(page.locator('[data-preset="previous_month"]')).to_have_attribute("aria-pressed", "true")
    page.click("text=Last 7 days")
    today = datetime.now(UTC).date()
    expect(page.locator("#id_start_date")).to_have_value(f"{today - timedelta(days=6):%Y-%m-%d}")
    expect(page.locator("#id_end_date")).to_have_value(f"{today:%Y-%m-%d}")
    expect(page.locator('[data-preset="last_7_days"]')).to_have_attribute("aria-pressed", "true")
    expect(page.locator('[data-preset="previous_month"]')).to_have_attribute("aria-pressed", "false")

    # A period that ends before it starts is refused on the form, naming the problem.
    page.fill("#id_start_date", "2025-03-10")
    page.fill("#id_end_date", "2025-03-01")
    page.click("#report-generate")
    expect(page.locator("#report-request")).to_contain_text("before")
    assert page.locator("tr.report-row[data-report-id]:not([data-report-id=''])").count() == 0

    # Generating from the form: the page comes back with the report queued, which then completes.
    page.select_option("#id_kind", "access_review")
    page.click("text=Previous calendar month")
    page.select_option("#id_format", "csv")
    page.click("#report-generate")
    page.wait_for_url(asgi_live_server + "/compliance/")
    queued = r"Report #\d+ is queued: Access review, \d+ \w{3} \d{4} to \d+ \w{3} \d{4} \(CSV\)"
    expect(page.locator("#messages")).to_contain_text(re.compile(queued))
    form_report_id = re.search(r"Report #(\d+)", page.locator("#messages").inner_text()).group(1)
    expect(_row(page, form_report_id).locator(".report-status")).to_have_text("Completed", timeout=30_000)

    # Requested without reloading the page: the row appears and completes live over the websocket.
    page.wait_for_function(SOCKET_OPEN)
    # Through the API from inside the page (its sudo window is fresh after sign-in): never reloaded, the page can
    # only learn of this report over the websocket.
    body = {"kind": "mfa_coverage", "format": "json", "period_start": start.isoformat(), "period_end": end.isoformat()}
    status, body = page.evaluate(PAGE_POST_JSON, ["/api/v1/compliance/reports/", body])
    assert status == 202, body  # accepted: generated in the background
    row = _row(page, body["id"])
    expect(row.locator(".report-status")).to_have_text("Completed", timeout=30_000)
    expect(row.locator(".percent")).to_have_text("100 %")
    # What was asked, as the server renders it for rows present at load.
    expect(row.locator('[data-cell="name"]')).to_have_text("MFA coverage")
    expect(row.locator('[data-cell="format"]')).to_have_text("JSON")
    expect(row.locator('[data-cell="period"]')).to_have_text(
        f"{start:%-d %b %Y, %H:%M} UTC \N{EN DASH} {end:%-d %b %Y, %H:%M} UTC"
    )
    expect(row.locator('[data-cell="size"]')).to_have_text(re.compile(r"\d+(\.\d)?\s(bytes|KB)"))
    assert page.evaluate("window.__sockets.length") == 1  # never reconnected, never reloaded
    _photograph(page, "index")

    with page.expect_download() as download:
        row.locator(".report-download").click()
    data = download.value.path().read_bytes()
    api = f"{asgi_live_server}/api/v1/compliance"
    manifest = json.loads(page.request.get(f"{api}/reports/{body['id']}/manifest/").body())
    public_pem = page.request.get(f"{api}/public-key/").body()

    assert download.value.suggested_filename.endswith(".json")
    assert json.loads(data)["meta"]["kind"] == "mfa_coverage"
    assert hashlib.sha256(data).hexdigest() == manifest["sha256"]
    assert row.locator('[data-cell="sha256"] code').get_attribute("title") == manifest["sha256"]
    expect(row.locator('[data-cell="sha256"] code')).to_have_text(manifest["sha256"][:12] + "…")
    serialization.load_pem_public_key(public_pem).verify(
        base64.b64decode(manifest["signature"]), manifest_signed_bytes(manifest)
    )

    # The report's page: the manifest as a table, hashes shortened with the whole value to hover and copy.
    page.click(f'tr[data-report-id="{body["id"]}"] [data-cell="id"] a')
    page.wait_for_url(f"{asgi_live_server}/compliance/reports/{body['id']}/")
    shown = page.locator("#report-manifest .hash").filter(has=page.locator("#manifest-fingerprint"))
    expect(shown.locator("code")).to_have_text(fingerprint[:12] + "…")
    expect(shown.locator("code")).to_have_attribute("title", fingerprint)
    expect(page.locator("#report-manifest")).to_contain_text(manifest["file_name"])
    expect(page.locator("#report-verify")).to_contain_text("python manage.py report verify <file> <manifest>")
    shown.locator("button").click()
    expect(shown.locator("button")).to_have_text("Copied")
    assert page.evaluate(CLIPBOARD) == fingerprint
    _photograph(page, "report")

    with page.expect_download() as manifest_download:
        page.click("#manifest-download")
    assert manifest_download.value.suggested_filename == f"{manifest['file_name']}.manifest.json"
    assert json.loads(manifest_download.value.path().read_bytes()) == manifest
