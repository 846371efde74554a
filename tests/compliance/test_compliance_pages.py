"""The compliance page (/compliance/) and the admin's read-only report list: officers and administrators only;
generating and downloading go through re-authentication as in the API."""

import hashlib
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from apps.accounts.roles import roles_setup
from apps.audit.models import AuditEvent
from apps.compliance import services
from apps.compliance.choices import ReportFormat, ReportKind
from apps.compliance.models import Report
from apps.jobs.choices import JobStatus
from tests.compliance.test_compliance_api import run_report
from tests.mfa import otp_force_login, sudo_force_login

PAGE = "/compliance/"
LAST_JANUARY = {"start_date": "2025-01-01", "end_date": "2025-01-31"}
pytestmark = pytest.mark.django_db


@pytest.fixture
def report_storage(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _report(**fields) -> Report:
    start, end = services.previous_month()
    values = {"kind": ReportKind.ACCESS_REVIEW, "format": ReportFormat.PDF, "period_start": start, "period_end": end}
    return Report.objects.create(**(values | fields))


def _sudo_next(response) -> str:
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/account/reauthenticate/"
    return parse_qs(location.query)["next"][0]


def test_page_shows_the_form_and_past_reports_to_a_compliance_officer(client, compliance_user):
    failed = _report(status=JobStatus.FAILED, error="REPORT_SIGNING_KEY is not set: reports cannot be signed.")
    completed = _report(
        status=JobStatus.COMPLETED,
        progress_done=100,
        progress_total=100,
        file="compliance/reports/opsdeck-access-review.pdf",
        size_bytes=2048,
        sha256="ab" * 32,
        key_fingerprint="cd" * 32,
    )
    otp_force_login(client, compliance_user)

    response = client.get(PAGE)

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="report-form"' in page
    for kind in ReportKind:
        assert f'value="{kind.value}"' in page
    # The period: two dates, the previous calendar month to start with, and presets that fill them.
    start, end = services.previous_month()
    assert f'name="start_date" value="{start:%Y-%m-%d}"' in page
    assert f'name="end_date" value="{(end - timedelta(days=1)):%Y-%m-%d}"' in page
    for label in ("Last 7 days", "Last 30 days", "Last quarter", "Previous calendar month"):
        assert f">{label}</button>" in page
    assert f'data-report-id="{failed.pk}"' in page
    assert "REPORT_SIGNING_KEY is not set" in page
    assert f'data-report-id="{completed.pk}"' in page
    assert f"/compliance/reports/{completed.pk}/download/" in page
    assert f'<a href="/compliance/reports/{completed.pk}/">' in page
    assert "2.0\xa0KB" in page
    assert f'<code title="{"ab" * 32}">abababababab…</code>' in page
    # The shell's look (one for the portal and the admin), the page marked in the sidebar, and the live script.
    assert "unfold/css/styles.css" in page
    assert '<a href="/compliance/" aria-current="page"' in page
    assert "compliance/compliance.js" in page


def test_page_loads_for_administrators(client, admin_user):
    otp_force_login(client, admin_user)
    assert client.get(PAGE).status_code == 200


@pytest.mark.parametrize("user", ["operator_user", "viewer_user", "outsider_user"])
def test_page_is_refused_to_everyone_else(client, request, user):
    report = _report(status=JobStatus.COMPLETED, file="compliance/reports/x.pdf")
    sudo_force_login(client, request.getfixturevalue(user))

    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, {"kind": "access_review", **LAST_JANUARY, "format": "pdf"}).status_code == 403
    for path in ("", "download/", "manifest/"):
        assert client.get(f"/compliance/reports/{report.pk}/{path}").status_code == 403
    assert Report.objects.count() == 1


def test_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_generating_without_a_fresh_code_goes_to_reauthentication_and_keeps_the_choice(client, compliance_user):
    otp_force_login(client, compliance_user)

    response = client.post(PAGE, {"kind": "usage", **LAST_JANUARY, "format": "csv"})

    back = _sudo_next(response)
    assert not Report.objects.exists()
    form = client.get(back).context["form"]
    picked = [form[name].value() for name in ("kind", "start_date", "end_date", "format")]
    assert picked == ["usage", "2025-01-01", "2025-01-31", "csv"]


def test_generating_inside_the_sudo_window_queues_the_report_for_the_chosen_period(client, compliance_user):
    sudo_force_login(client, compliance_user)
    start, end = services.previous_month()
    dates = {"start_date": f"{start:%Y-%m-%d}", "end_date": f"{(end - timedelta(days=1)):%Y-%m-%d}"}

    response = client.post(PAGE, {"kind": "mfa_coverage", **dates, "format": "json"})
    assert response.status_code == 302  # post, redirect, get: a reload does not ask for a second report
    response = client.get(response["Location"])

    report = Report.objects.get()
    assert (report.kind, report.format, report.status, report.owner) == (
        "mfa_coverage",
        "json",
        "queued",
        compliance_user,
    )
    assert (report.period_start, report.period_end) == services.previous_month()
    assert f"Report #{report.pk}" in response.content.decode()


def test_custom_dates_include_the_last_day(client, compliance_user):
    sudo_force_login(client, compliance_user)

    client.post(
        PAGE,
        {
            "kind": "audit_trail",
            **LAST_JANUARY,
            "format": "csv",
            "action_prefix": "backup.",
        },
    )

    report = Report.objects.get()
    assert (report.period_start, report.period_end) == (
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2025, 2, 1, tzinfo=UTC),
    )
    assert report.filters == {"action_prefix": "backup."}


@pytest.mark.parametrize(
    ("dates", "says"),
    [
        ({"start_date": "2025-02-01", "end_date": "2025-01-01"}, "The period ends before it starts"),
        ({"start_date": "2000-01-01", "end_date": "2025-01-01"}, "the longest allowed is 3,660 days."),
        ({"start_date": "2025-01-01"}, "Pick the last day of the period."),
        ({"end_date": "2025-01-01"}, "Pick the first day of the period."),
        ({"start_date": "2025-01-01", "end_date": "2025-13-01"}, "Enter a valid date."),
    ],
)
def test_bad_custom_periods_are_form_errors(client, compliance_user, dates, says):
    sudo_force_login(client, compliance_user)

    response = client.post(PAGE, {"kind": "usage", "format": "pdf", **dates})

    assert response.status_code == 400
    assert says in response.content.decode()
    assert not Report.objects.exists()


def test_data_subject_export_of_an_unknown_user_is_a_form_error(client, compliance_user):
    sudo_force_login(client, compliance_user)

    response = client.post(PAGE, {"kind": "subject_export", **LAST_JANUARY, "format": "json", "username": "ghost"})

    assert response.status_code == 400
    assert "There is no user &#x27;ghost&#x27; to export." in response.content.decode()


def test_download_page_asks_for_reauthentication_then_serves_the_file(client, compliance_user, report_storage):
    sudo_force_login(client, compliance_user)
    client.post(PAGE, {"kind": "mfa_coverage", **LAST_JANUARY, "format": "csv"})
    report = Report.objects.get()
    run_report(report.pk)
    report.refresh_from_db()
    url = f"/compliance/reports/{report.pk}/download/"

    client.logout()
    otp_force_login(client, compliance_user)
    assert _sudo_next(client.get(url)) == url
    assert not AuditEvent.objects.filter(action="compliance.report.downloaded").exists()

    sudo_force_login(client, compliance_user)
    response = client.get(url)
    assert response.status_code == 200
    content = b"".join(response.streaming_content)
    assert hashlib.sha256(content).hexdigest() == report.sha256
    assert response["Content-Disposition"].startswith("attachment;")
    assert AuditEvent.objects.filter(action="compliance.report.downloaded", actor=compliance_user).count() == 1


# --- A report's page and its manifest


@pytest.fixture
def completed_report(client, compliance_user, report_storage) -> Report:
    sudo_force_login(client, compliance_user)
    client.post(PAGE, {"kind": "mfa_coverage", **LAST_JANUARY, "format": "csv"})
    report = Report.objects.get()
    run_report(report.pk)
    report.refresh_from_db()
    client.logout()
    otp_force_login(client, compliance_user)
    return report


def test_report_page_shows_the_signed_manifest_as_a_table_with_shortened_hashes(client, completed_report):
    response = client.get(f"/compliance/reports/{completed_report.pk}/")

    assert response.status_code == 200
    page = response.content.decode()
    manifest = completed_report.manifest
    assert f"<code>{manifest['file_name']}</code>" in page
    for value, target in (
        (manifest["sha256"], "manifest-sha256"),
        (manifest["key_fingerprint"], "manifest-fingerprint"),
        (manifest["audit_head_hash"], "manifest-audit-head"),
    ):
        assert f'<code title="{value}" aria-hidden="true">{value[:12]}…</code>' in page
        assert f'<span class="visually-hidden" id="{target}">{value}</span>' in page
        assert f'data-copy-target="{target}"' in page
    assert f"{datetime.fromisoformat(manifest['generated_at']):%-d %b %Y, %H:%M} UTC" in page
    assert "python manage.py report verify &lt;file&gt; &lt;manifest&gt;" in page
    assert f'href="/compliance/reports/{completed_report.pk}/manifest/"' in page
    assert f'href="/compliance/reports/{completed_report.pk}/download/"' in page
    # Sections and their figures named in words, as in the PDF; a table, never the raw JSON.
    assert "<tr><td>Without MFA</td>" in page
    assert "without_mfa" not in page
    assert '"signature"' not in page
    assert manifest["signature"] not in page
    assert "js/copy.js" in page


def test_manifest_download_is_an_audited_json_attachment_as_in_the_api(client, completed_report, compliance_user):
    response = client.get(f"/compliance/reports/{completed_report.pk}/manifest/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    name = completed_report.manifest["file_name"]
    assert response["Content-Disposition"] == f'attachment; filename="{name}.manifest.json"'
    assert json.loads(response.content) == completed_report.manifest
    api = client.get(f"/api/v1/compliance/reports/{completed_report.pk}/manifest/")
    assert api.json() == completed_report.manifest
    events = AuditEvent.objects.filter(action="compliance.report.manifest_downloaded", actor=compliance_user)
    assert events.count() == 2


def test_report_page_of_an_unfinished_report_has_no_manifest_to_download(client, compliance_user):
    report = _report(status=JobStatus.RUNNING)
    otp_force_login(client, compliance_user)

    page = client.get(f"/compliance/reports/{report.pk}/")
    manifest = client.get(f"/compliance/reports/{report.pk}/manifest/", follow=True)

    assert page.status_code == 200
    assert "Only a completed report has a signed manifest: this one is running; reload" in page.content.decode()
    assert manifest.redirect_chain == [(f"/compliance/reports/{report.pk}/", 302)]
    assert f"Report #{report.pk} is running: only a completed report has a manifest." in manifest.content.decode()
    assert not AuditEvent.objects.filter(action="compliance.report.manifest_downloaded").exists()


def test_report_page_and_manifest_of_an_unknown_report_are_404s(client, admin_user):
    otp_force_login(client, admin_user)

    assert client.get("/compliance/reports/999999/").status_code == 404
    assert client.get("/compliance/reports/999999/manifest/").status_code == 404


# --- Admin


def test_admin_lists_reports_read_only_with_filters(client, admin_user):
    roles_setup()
    report = _report(
        status=JobStatus.COMPLETED,
        size_bytes=4096,
        owner=admin_user,
        filters={"action_prefix": "backup."},
        row_counts={"accounts": 1_234},
        manifest={"kind": "access_review", "sections": [{"name": "accounts", "rows": 1_234}]},
    )
    otp_force_login(client, admin_user)

    listed = client.get("/admin/compliance/report/", {"status__exact": "completed"})
    detail = client.get(f"/admin/compliance/report/{report.pk}/change/")

    assert listed.status_code == 200
    page = listed.content.decode()
    assert "4.0\xa0KB" in page
    assert "alice-admin" in page
    assert detail.status_code == 200
    shown = detail.content.decode()
    assert '<th scope="row">Action prefix</th><td>backup.</td>' in shown
    assert '<th scope="row">accounts</th><td>1,234</td>' in shown
    assert "<tr><td>accounts</td><td>1,234</td></tr>" in shown  # the manifest's sections, one row each
    assert "&quot;sections&quot;" not in shown
    assert client.get("/admin/compliance/report/add/").status_code == 403
    assert client.post(f"/admin/compliance/report/{report.pk}/delete/").status_code == 403


def test_compliance_officer_sees_the_report_list_in_the_admin(client, compliance_user):
    roles_setup()
    compliance_user.is_staff = True
    compliance_user.save()
    _report()
    otp_force_login(client, compliance_user)

    assert client.get("/admin/compliance/report/").status_code == 200
