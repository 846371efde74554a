"""Compliance reports API: clear 400s for bad requests, compliance officers and administrators only, generating
and downloading only inside the sudo window, a generated report signed so that the public key alone verifies it,
live progress to the requester, the monthly schedule and retention."""

import base64
import hashlib
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from django.utils import timezone

from apps.accounts.tokens import token_create
from apps.audit.models import AuditEvent
from apps.audit.services import event_record
from apps.compliance import services, tasks
from apps.compliance.choices import ReportFormat, ReportKind
from apps.compliance.models import Report
from apps.compliance.selectors import audit_head_hash
from apps.jobs.choices import JobStatus
from tests.factories import UserFactory
from tests.helpers import api_error_detail, manifest_signed_bytes, messages_until_quiet
from tests.mfa import otp_force_login, sudo_expire, sudo_force_login, totp_device_create, without_fresh_code

REPORTS_URL = "/api/v1/compliance/reports/"
PUBLIC_KEY_URL = "/api/v1/compliance/public-key/"


def _detail_url(report_id: int, suffix: str = "") -> str:
    return f"{REPORTS_URL}{report_id}/{suffix}"


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def _last_month() -> tuple[datetime, datetime]:
    return services.previous_month()


def _body(kind=ReportKind.MFA_COVERAGE, fmt=ReportFormat.JSON, start=None, end=None, **extra) -> dict:
    default_start, default_end = _last_month()
    return {
        "kind": kind,
        "format": fmt,
        "period_start": (start or default_start).isoformat(),
        "period_end": (end or default_end).isoformat(),
        **extra,
    }


def report_row(status=JobStatus.QUEUED, **fields) -> Report:
    """A report record without a file, for tests about access rather than contents."""
    start, end = _last_month()
    values = {"kind": ReportKind.ACCESS_REVIEW, "format": ReportFormat.PDF, "period_start": start, "period_end": end}
    return Report.objects.create(status=status, **(values | fields))


def run_report(report_id: int) -> str:
    """The generation task run here, in this process (eagerly, with a task id as a worker has)."""
    return tasks.generate_report.apply(args=[report_id]).get()


@pytest.fixture
def report_storage(settings, tmp_path):
    """Report files in a folder of this test."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


# --- Validation: clear 400s naming the problem and the limit


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        (_body(kind="payroll"), "kind", "Unknown report kind 'payroll': choose one of access_review, "),
        (_body(fmt="docx"), "format", "Unknown format 'docx': choose one of csv, json, pdf."),
        (
            _body(start=datetime(2025, 3, 1, tzinfo=UTC), end=datetime(2025, 2, 1, tzinfo=UTC)),
            "period_end",
            "The period ends before it starts",
        ),
        (
            _body(start=datetime(2025, 3, 1, tzinfo=UTC), end=datetime(2025, 3, 1, tzinfo=UTC)),
            "period_end",
            "The period ends before it starts",
        ),
        (_body(kind=ReportKind.SUBJECT_EXPORT), "filters", "A data-subject export needs filters.username"),
        (
            _body(kind=ReportKind.SUBJECT_EXPORT, filters={"username": "nobody-here"}),
            "filters",
            "There is no user 'nobody-here' to export.",
        ),
        (
            _body(kind=ReportKind.MFA_COVERAGE, filters={"actor": "carl"}),
            "filters",
            "Unknown filter for MFA coverage reports: actor; they take no filters.",
        ),
    ],
    ids=[
        "unknown-kind",
        "unknown-format",
        "end-before-start",
        "empty-period",
        "export-without-user",
        "no-such-user",
        "unknown-filter",
    ],
)
def test_bad_requests_are_400s_naming_the_field_and_create_nothing(api_client, compliance_user, body, field, says):
    sudo_force_login(api_client, compliance_user)

    response = api_client.post(REPORTS_URL, body, format="json")

    detail = api_error_detail(response, 400, "invalid")
    assert detail.startswith(f"{field}: ")
    assert says in response.json()["errors"][field][0]
    assert not Report.objects.exists()


@pytest.mark.django_db
def test_period_ending_in_the_future_is_a_400(api_client, compliance_user):
    sudo_force_login(api_client, compliance_user)
    tomorrow = timezone.now() + timedelta(days=1)

    response = api_client.post(REPORTS_URL, _body(start=tomorrow - timedelta(days=7), end=tomorrow), format="json")

    assert "The period ends in the future" in api_error_detail(response, 400, "invalid")
    assert not Report.objects.exists()


@pytest.mark.django_db
def test_period_longer_than_the_limit_is_a_400_naming_the_limit(api_client, compliance_user, settings):
    settings.REPORT_MAX_PERIOD_DAYS = 31
    sudo_force_login(api_client, compliance_user)
    end = timezone.now() - timedelta(days=1)

    too_long = api_client.post(REPORTS_URL, _body(start=end - timedelta(days=32), end=end), format="json")
    just_fits = api_client.post(REPORTS_URL, _body(start=end - timedelta(days=31), end=end), format="json")

    detail = api_error_detail(too_long, 400, "invalid")
    assert "the longest allowed is 31 days." in detail
    assert just_fits.status_code == 202, just_fits.content
    assert Report.objects.count() == 1


@pytest.mark.django_db
def test_request_is_queued_audited_and_answers_202_with_the_report(api_client, compliance_user):
    sudo_force_login(api_client, compliance_user)

    response = api_client.post(
        REPORTS_URL, _body(kind=ReportKind.AUDIT_TRAIL, filters={"action_prefix": "backup."}), format="json"
    )

    assert response.status_code == 202, response.content
    body = response.json()
    report = Report.objects.get()
    assert response["Location"].endswith(_detail_url(report.pk))
    assert (body["id"], body["status"], body["progress"], body["requested_by"]) == (
        report.pk,
        "queued",
        0,
        "carl-compliance",
    )
    assert (report.kind, report.format, report.filters) == ("audit_trail", "json", {"action_prefix": "backup."})
    assert (report.period_start, report.period_end) == _last_month()
    [requested] = _events("compliance.report.requested")
    assert requested.actor == compliance_user
    assert requested.object_id == str(report.pk)


# --- Who may do what


@pytest.mark.django_db
@pytest.mark.parametrize("user", ["operator_user", "viewer_user", "outsider_user"])
def test_operators_viewers_and_users_without_a_role_cannot_see_generate_or_download_reports(
    api_client, request, user, report_storage
):
    report = report_row(status=JobStatus.COMPLETED, file="compliance/reports/x.pdf", sha256="ab" * 32)
    sudo_force_login(api_client, request.getfixturevalue(user))

    responses = [
        api_client.get(REPORTS_URL),
        api_client.get(_detail_url(report.pk)),
        api_client.post(REPORTS_URL, _body(), format="json"),
        api_client.get(_detail_url(report.pk, "download/")),
        api_client.get(_detail_url(report.pk, "manifest/")),
    ]

    for response in responses:
        assert api_error_detail(response, 403, "permission_denied") == (
            "Compliance reports are for compliance officers and administrators."
        )
    assert Report.objects.count() == 1
    assert not _events("compliance.report.downloaded")


@pytest.mark.django_db
@pytest.mark.parametrize("session", ["code-only", "sudo-expired", "api-token"])
def test_compliance_officer_cannot_generate_without_a_fresh_authenticator_code(api_client, compliance_user, session):
    headers = without_fresh_code(api_client, compliance_user, session)

    response = api_client.post(REPORTS_URL, _body(), format="json", **headers)

    detail = api_error_detail(response, 403, "reauthentication_required")
    assert "authenticator code" in detail
    assert not Report.objects.exists()


@pytest.mark.django_db
def test_compliance_officer_and_admin_list_and_read_every_report(api_client, compliance_user, admin_user):
    scheduled = report_row(scheduled=True)
    by_admin = report_row(owner=admin_user, kind=ReportKind.USAGE)

    for user in (compliance_user, admin_user):
        otp_force_login(api_client, user)
        listed = api_client.get(REPORTS_URL).json()
        assert [row["id"] for row in listed["results"]] == [by_admin.pk, scheduled.pk]
        detail = api_client.get(_detail_url(scheduled.pk)).json()
        assert (detail["status"], detail["requested_by"], detail["scheduled"]) == ("queued", None, True)
        assert detail["download_url"] is None


@pytest.mark.django_db
def test_unknown_report_is_a_404(api_client, compliance_user):
    otp_force_login(api_client, compliance_user)
    assert api_error_detail(api_client.get(_detail_url(999999)), 404, "not_found")


@pytest.mark.django_db
@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FAILED])
def test_download_and_manifest_of_a_report_without_a_file_are_409s(api_client, compliance_user, status):
    report = report_row(status=status)
    sudo_force_login(api_client, compliance_user)

    download = api_client.get(_detail_url(report.pk, "download/"))
    manifest = api_client.get(_detail_url(report.pk, "manifest/"))

    assert "only a completed report has a file" in api_error_detail(download, 409, "conflict")
    assert "only a completed report has a manifest" in api_error_detail(manifest, 409, "conflict")
    assert not _events("compliance.report.downloaded")


@pytest.mark.django_db
def test_api_root_links_the_reports_and_the_public_key(api_client, compliance_user):
    otp_force_login(api_client, compliance_user)
    body = api_client.get("/api/v1/").json()
    assert body["compliance-reports"].endswith(REPORTS_URL)
    assert body["compliance-public-key"].endswith(PUBLIC_KEY_URL)


@pytest.mark.django_db
def test_public_key_is_served_as_pem_to_anyone(client):
    response = client.get(PUBLIC_KEY_URL)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-pem-file"
    key = serialization.load_pem_public_key(response.content)
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert response["X-Key-Fingerprint"] == hashlib.sha256(raw).hexdigest()


@pytest.mark.django_db
@pytest.mark.parametrize("configured", ["", "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"])
def test_public_key_without_a_usable_signing_key_is_503_naming_the_setting(client, settings, configured):
    settings.REPORT_SIGNING_KEY = configured

    response = client.get(PUBLIC_KEY_URL)

    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"
    assert "REPORT_SIGNING_KEY" in response.json()["detail"]
    assert "not a key" not in response.json()["detail"]


# --- A generated report, end to end


def _generated(api_client, user, body) -> Report:
    sudo_force_login(api_client, user)
    response = api_client.post(REPORTS_URL, body, format="json")
    assert response.status_code == 202, response.content
    # The task's body, run here: the test transaction never commits, so nothing was enqueued.
    message = run_report(response.json()["id"])
    assert "completed" in message, message
    return Report.objects.get(pk=response.json()["id"])


def _download(api_client, report: Report) -> bytes:
    response = api_client.get(_detail_url(report.pk, "download/"))
    assert response.status_code == 200, getattr(response, "content", b"")
    content = b"".join(response.streaming_content)
    return content


@pytest.mark.django_db
def test_generated_report_is_completed_downloadable_and_verifies_with_only_the_public_key(
    api_client, client, compliance_user, admin_user, report_storage
):
    UserFactory(username="no-mfa-admin", is_staff=True, roles=["admin"])
    head_before = audit_head_hash()

    report = _generated(api_client, compliance_user, _body(kind=ReportKind.MFA_COVERAGE, fmt=ReportFormat.JSON))

    detail = api_client.get(_detail_url(report.pk)).json()
    assert (detail["status"], detail["progress"], detail["error"]) == ("completed", 100, "")
    assert detail["size_bytes"] > 0
    assert len(detail["sha256"]) == 64
    assert len(detail["key_fingerprint"]) == 64
    assert detail["row_counts"]
    assert all(isinstance(count, int) for count in detail["row_counts"].values())
    assert detail["download_url"].endswith(_detail_url(report.pk, "download/"))
    # The chain's head when generation started: the newest event before "generated" (the request came before).
    generated = AuditEvent.objects.get(action="compliance.report.generated")
    assert detail["audit_head_hash"] != head_before
    assert detail["audit_head_hash"] == AuditEvent.objects.filter(id__lt=generated.id).order_by("-id")[0].hash

    content = _download(api_client, report)
    manifest = api_client.get(_detail_url(report.pk, "manifest/")).json()
    public_pem = client.get(PUBLIC_KEY_URL).content

    assert len(content) == detail["size_bytes"]
    assert hashlib.sha256(content).hexdigest() == manifest["sha256"] == detail["sha256"]
    public_key = serialization.load_pem_public_key(public_pem)
    # The signature covers the manifest, which carries the file's SHA-256 (raises if it does not verify).
    public_key.verify(base64.b64decode(manifest["signature"]), manifest_signed_bytes(manifest))
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert manifest["key_fingerprint"] == hashlib.sha256(raw).hexdigest()
    assert (manifest["signature_algorithm"], manifest["signature_scheme"]) == ("Ed25519", "manifest-v1")
    assert (manifest["kind"], manifest["format"], manifest["generated_by"]) == (
        "mfa_coverage",
        "json",
        "carl-compliance",
    )
    assert manifest["parameters"]["period_start"] == report.period_start.isoformat()
    assert manifest["row_counts"] == detail["row_counts"]
    body = json.loads(content)
    assert body["meta"]["kind"] == "mfa_coverage"
    assert {name: len(section["rows"]) for name, section in body["sections"].items()} == detail["row_counts"]
    assert manifest["summaries"] == {name: section["summary"] for name, section in body["sections"].items()}

    # The manifest lies beside the file in storage, as served.
    stored = report_storage / f"{report.file.name}.manifest.json"
    assert json.loads(stored.read_text()) == manifest

    [generated] = _events("compliance.report.generated")
    # Generated on the officer's behalf: both events name them.
    assert (generated.actor, generated.outcome, generated.object_id) == (compliance_user, "success", str(report.pk))
    assert generated.changes["sha256"] == report.sha256
    assert _events("compliance.report.requested")[0].actor == compliance_user
    [downloaded] = _events("compliance.report.downloaded")
    assert downloaded.actor == compliance_user


@pytest.mark.django_db
def test_audit_trail_csv_has_its_chain_verification_and_head_hash_in_the_manifest(
    api_client, compliance_user, report_storage
):
    start = timezone.now() - timedelta(hours=1)
    event_record(action="test.in_period")
    end = timezone.now()
    body = _body(kind=ReportKind.AUDIT_TRAIL, fmt=ReportFormat.CSV, start=start, end=end)

    report = _generated(api_client, compliance_user, body)

    manifest = api_client.get(_detail_url(report.pk, "manifest/")).json()
    summary = manifest["summaries"]["events"]
    assert manifest["file_name"].endswith(".csv")  # one section: a plain CSV file, with no room for the summary
    assert (
        summary["events"]
        == manifest["row_counts"]["events"]
        == AuditEvent.objects.filter(timestamp__gte=start, timestamp__lt=end).count()
    )
    assert summary["chain intact in period"] == "yes"
    assert summary["chain verification"].startswith(f"Verified {summary['events']} events")
    assert summary["head hash at end of period"] == AuditEvent.objects.filter(timestamp__lt=end).latest("id").hash


@pytest.mark.django_db
def test_one_changed_byte_or_manifest_value_no_longer_verifies(api_client, client, compliance_user, report_storage):
    report = _generated(api_client, compliance_user, _body(kind=ReportKind.ACCESS_REVIEW, fmt=ReportFormat.CSV))
    content = bytearray(_download(api_client, report))
    manifest = api_client.get(_detail_url(report.pk, "manifest/")).json()
    public_key = serialization.load_pem_public_key(client.get(PUBLIC_KEY_URL).content)
    content[len(content) // 2] ^= 0x01
    # The forger's way round the file's hash: put the changed file's SHA-256 in the manifest.
    forged = {**manifest, "sha256": hashlib.sha256(content).hexdigest()}

    from cryptography.exceptions import InvalidSignature

    assert hashlib.sha256(content).hexdigest() != manifest["sha256"]
    with pytest.raises(InvalidSignature):
        public_key.verify(base64.b64decode(forged["signature"]), manifest_signed_bytes(forged))


@pytest.mark.django_db
@pytest.mark.parametrize("session", ["code-only", "sudo-expired", "api-token"])
def test_download_of_a_generated_report_needs_a_fresh_authenticator_code(
    api_client, compliance_user, report_storage, session
):
    report = _generated(api_client, compliance_user, _body())
    headers = {}
    api_client.logout()
    if session == "code-only":
        otp_force_login(api_client, compliance_user)
    elif session == "sudo-expired":
        sudo_force_login(api_client, compliance_user)
        sudo_expire(api_client)
    else:
        totp_device_create(compliance_user)  # a token of a user without MFA would be refused before the sudo rule
        issued = token_create(owner=compliance_user, name="ci", scopes=["read"], expires_in_days=1)
        headers = {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}

    response = api_client.get(_detail_url(report.pk, "download/"), **headers)

    assert "authenticator code" in api_error_detail(response, 403, "reauthentication_required")
    assert not _events("compliance.report.downloaded")


@pytest.mark.django_db
def test_admin_may_generate_and_download_too(api_client, admin_user, report_storage):
    report = _generated(api_client, admin_user, _body(kind=ReportKind.BACKUP_EVIDENCE, fmt=ReportFormat.PDF))

    content = _download(api_client, report)

    assert content.startswith(b"%PDF")
    assert report.file.name.endswith(".pdf")


@pytest.mark.django_db
def test_a_failing_generation_leaves_a_failed_report_with_its_reason_and_no_file(
    api_client, compliance_user, report_storage, settings
):
    settings.REPORT_SIGNING_KEY = "not a key"
    sudo_force_login(api_client, compliance_user)
    report_id = api_client.post(REPORTS_URL, _body(), format="json").json()["id"]

    message = run_report(report_id)

    report = Report.objects.get(pk=report_id)
    assert report.status == JobStatus.FAILED
    assert "REPORT_SIGNING_KEY" in report.error
    assert "REPORT_SIGNING_KEY" in message
    assert not report.file
    assert not report.sha256
    assert report.size_bytes is None
    folder = report_storage / "compliance" / "reports"
    assert not folder.exists() or not any(folder.iterdir())
    [generated] = _events("compliance.report.generated")
    assert generated.outcome == "failure"
    # A finished report is not generated again when its task runs twice.
    assert "nothing to do" in run_report(report_id)


def test_progress_streams_to_the_requester_and_not_to_viewers(
    transactional_db, compliance_user, viewer_user, client, report_storage
):
    from asgiref.sync import async_to_sync, sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.test import Client

    from project.asgi import application
    from tests.core.test_live_events import ORIGIN, _session_cookie

    start, end = _last_month()
    report = Report.objects.create(
        kind=ReportKind.ACCESS_REVIEW,
        format=ReportFormat.CSV,
        period_start=start,
        period_end=end,
        owner=compliance_user,
    )
    officer_stream = WebsocketCommunicator(
        application, "/ws/jobs/", headers=[ORIGIN, _session_cookie(client, compliance_user)]
    )
    viewer_stream = WebsocketCommunicator(
        application, "/ws/jobs/", headers=[ORIGIN, _session_cookie(Client(), viewer_user)]
    )

    async def scenario():
        for stream in (officer_stream, viewer_stream):
            connected, _ = await stream.connect()
            assert connected
            await stream.receive_json_from(timeout=5)  # the snapshot
        await sync_to_async(run_report)(report.pk)
        updates = []
        while not updates or updates[-1]["status"] == JobStatus.RUNNING:
            updates.append(await officer_stream.receive_json_from(timeout=30))
        viewer_received = await messages_until_quiet(viewer_stream)
        for stream in (officer_stream, viewer_stream):
            await stream.disconnect()
        return updates, viewer_received

    updates, viewer_received = async_to_sync(scenario)()

    assert {(update["kind"], update["id"]) for update in updates} == {("report", report.pk)}
    assert [updates[0]["status"], updates[-1]["status"]] == [JobStatus.RUNNING, JobStatus.COMPLETED]
    percents = [update["progress"]["percent"] for update in updates]
    assert percents == sorted(percents)
    assert percents[-1] == 100
    assert len(percents) >= 3
    assert updates[-1]["progress"]["sha256"] == Report.objects.get(pk=report.pk).sha256
    assert all(message["type"] == "websocket.send" for message in viewer_received), "the viewer's stream stays open"
    assert "report" not in {json.loads(message["text"]).get("kind") for message in viewer_received}


# --- Schedule and retention


@pytest.mark.django_db
def test_monthly_schedule_requests_the_three_reports_for_the_previous_month_once():
    first_of_march = datetime(2025, 3, 1, 1, 0, tzinfo=UTC)

    message = services.monthly_reports_request(now=first_of_march)
    again = services.monthly_reports_request(now=first_of_march)

    reports = Report.objects.order_by("kind")
    assert [(r.kind, r.format, r.scheduled, r.owner, r.status) for r in reports] == [
        ("access_review", "pdf", True, None, "queued"),
        ("backup_evidence", "pdf", True, None, "queued"),
        ("mfa_coverage", "pdf", True, None, "queued"),
    ]
    assert {(r.period_start, r.period_end) for r in reports} == {
        (datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC))
    }
    assert message.startswith("Requested the reports for 2025-02:")
    assert again == "The reports for 2025-02 were already requested."


@pytest.mark.django_db
def test_monthly_task_is_a_recorded_maintenance_run_for_last_calendar_month():
    from apps.core.models import MaintenanceRun

    tasks.reports_monthly.apply().get()

    start, end = services.previous_month()
    assert Report.objects.filter(scheduled=True, period_start=start, period_end=end).count() == 3
    run = MaintenanceRun.objects.get(task_name="maintenance.reports_monthly")
    assert run.status == "succeeded"
    assert f"{start:%Y-%m}" in run.message


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        (datetime(2025, 1, 1, 1, tzinfo=UTC), datetime(2024, 12, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)),
        (datetime(2024, 3, 31, 23, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)),
    ],
)
def test_previous_month_is_the_calendar_month_in_utc(now, start, end):
    assert services.previous_month(now=now) == (start, end)


@pytest.mark.django_db
def test_reports_older_than_the_retention_are_pruned_with_their_files(
    api_client, compliance_user, report_storage, settings
):
    settings.REPORT_RETENTION_DAYS = 30
    old = _generated(api_client, compliance_user, _body())
    recent = _generated(api_client, compliance_user, _body(kind=ReportKind.ACCESS_REVIEW))
    Report.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    old_file = report_storage / old.file.name

    message = services.reports_prune()

    assert message == "Pruned 1 report older than 30 days."
    assert list(Report.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not old_file.exists()
    assert not old_file.with_name(old_file.name + ".manifest.json").exists()
    assert (report_storage / recent.file.name).exists()
    assert [event.object_id for event in _events("compliance.report.pruned")] == [str(old.pk)]


def test_requested_report_is_generated_by_a_celery_worker(celery_worker, api_client, compliance_user, report_storage):
    sudo_force_login(api_client, compliance_user)

    response = api_client.post(REPORTS_URL, _body(kind=ReportKind.ACCESS_REVIEW, fmt=ReportFormat.PDF), format="json")

    assert response.status_code == 202, response.content
    deadline = time.monotonic() + 60
    while (report := Report.objects.get(pk=response.json()["id"])).status not in ("completed", "failed"):
        assert time.monotonic() < deadline, f"report still {report.status}"
        time.sleep(0.2)
    assert (report.status, report.error, report.percent, report.attempts) == ("completed", "", 100, 1)
    assert (report_storage / report.file.name).read_bytes().startswith(b"%PDF")
