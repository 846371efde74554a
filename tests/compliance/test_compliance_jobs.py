"""Reports as jobs: cancelled (queued at once, while generated at the next rows), requeued when their worker is
lost, in the /ws/jobs/ snapshot of who may see them, and carried over from the table before the job layer."""

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.compliance import services
from apps.compliance.choices import ReportFormat, ReportKind
from apps.compliance.models import Report
from apps.compliance.reports import REPORT_BUILDERS, Section
from apps.jobs.choices import JobStatus
from apps.jobs.lifecycle import jobs_requeue_lost
from tests.compliance.test_compliance_api import _detail_url, report_row, run_report
from tests.factories import UserFactory
from tests.helpers import api_error_detail
from tests.mfa import otp_force_login


@pytest.fixture
def report_storage(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


# --- Cancel through the API


@pytest.mark.django_db
def test_requester_cancels_a_queued_report_at_once_and_a_finished_one_is_a_409(api_client, compliance_user):
    report = report_row(owner=compliance_user)
    otp_force_login(api_client, compliance_user)

    response = api_client.post(_detail_url(report.pk, "cancel/"))
    again = api_client.post(_detail_url(report.pk, "cancel/"))

    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["requested_by"]) == ("cancelled", "carl-compliance")
    assert response.json()["error"] == "Cancelled by carl-compliance before it ran."
    assert "already cancelled" in api_error_detail(again, 409, "conflict")
    [cancelled] = AuditEvent.objects.filter(action="compliance.report.cancelled")
    assert (cancelled.actor, cancelled.object_id) == (compliance_user, str(report.pk))
    assert "nothing to do" in run_report(report.pk)


@pytest.mark.django_db
def test_admin_cancels_a_running_report_which_shows_cancelling(api_client, admin_user):
    report = report_row(status=JobStatus.RUNNING, scheduled=True)
    otp_force_login(api_client, admin_user)

    response = api_client.post(_detail_url(report.pk, "cancel/"))

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelling"
    assert Report.objects.get(pk=report.pk).status == JobStatus.CANCELLING


@pytest.mark.django_db
def test_another_officer_may_not_cancel_and_outsiders_do_not_see_reports(api_client, compliance_user, viewer_user):
    report = report_row(owner=compliance_user)
    other_officer = UserFactory(username="cora-compliance", roles=["compliance"])

    otp_force_login(api_client, other_officer)
    refused = api_client.post(_detail_url(report.pk, "cancel/"))
    otp_force_login(api_client, viewer_user)
    hidden = api_client.post(_detail_url(report.pk, "cancel/"))

    assert "who asked for a report, or an administrator" in api_error_detail(refused, 403, "permission_denied")
    assert hidden.status_code == 403
    assert Report.objects.get(pk=report.pk).status == JobStatus.QUEUED


def test_a_report_cancelled_while_generated_stops_at_its_next_rows_and_keeps_no_file(
    transactional_db, compliance_user, report_storage, monkeypatch
):
    start, end = services.previous_month()
    report = Report.objects.create(
        kind=ReportKind.USAGE,
        format=ReportFormat.CSV,
        period_start=start,
        period_end=end,
        owner=compliance_user,
        progress_total=100,
    )
    rows_served = []

    def rows():
        # Asked to cancel once the rows start; the worker's watcher notices within half a second.
        Report.objects.filter(pk=report.pk).update(status=JobStatus.CANCELLING)
        time.sleep(1.5)
        for number in range(50_000):
            rows_served.append(number)
            yield [number]

    monkeypatch.setitem(
        REPORT_BUILDERS, ReportKind.USAGE, lambda params: iter([Section("n", "Numbers", ["n"], rows())])
    )

    message = run_report(report.pk)

    report.refresh_from_db()
    assert (report.status, report.error) == (JobStatus.CANCELLED, "Cancelled while it was being generated.")
    assert message.startswith(f"Report #{report.pk} cancelled")
    assert len(rows_served) <= services.PROGRESS_ROWS
    assert not report.file
    assert [path for path in report_storage.rglob("*") if path.is_file()] == []
    assert AuditEvent.objects.filter(action="compliance.report.cancelled", object_id=str(report.pk)).exists()


# --- A lost worker


@pytest.mark.django_db
def test_a_report_whose_worker_stopped_heartbeating_is_requeued(settings):
    settings.JOBS_HEARTBEAT_TIMEOUT = 30
    silent_since = timezone.now() - timedelta(seconds=31)
    report = report_row(
        status=JobStatus.RUNNING, attempts=1, started_at=silent_since, heartbeat_at=silent_since, celery_task_id="t1"
    )

    moved = jobs_requeue_lost()

    report.refresh_from_db()
    assert moved == {"report": 1}
    assert (report.status, report.attempts, report.celery_task_id) == (JobStatus.QUEUED, 1, "")
    assert AuditEvent.objects.filter(action="compliance.report.requeued", object_id=str(report.pk)).exists()


# --- The live stream


def test_snapshot_holds_every_report_for_administrators_and_their_own_for_an_officer(
    transactional_db, client, compliance_user, admin_user, viewer_user
):
    from asgiref.sync import async_to_sync
    from channels.testing import WebsocketCommunicator
    from django.test import Client

    from project.asgi import application
    from tests.core.test_live_events import ORIGIN, _session_cookie

    own = report_row(owner=compliance_user, status=JobStatus.RUNNING, progress_done=40, progress_total=100)
    scheduled = report_row(scheduled=True)

    async def snapshot(cookie):
        stream = WebsocketCommunicator(application, "/ws/jobs/", headers=[ORIGIN, cookie])
        connected, _ = await stream.connect()
        assert connected
        message = await stream.receive_json_from(timeout=5)
        await stream.disconnect()
        return {job["id"]: job for job in message["jobs"] if job["kind"] == "report"}

    officer = async_to_sync(snapshot)(_session_cookie(client, compliance_user))
    admin = async_to_sync(snapshot)(_session_cookie(Client(), admin_user))
    viewer = async_to_sync(snapshot)(_session_cookie(Client(), viewer_user))

    assert list(officer) == [own.pk]
    assert officer[own.pk]["progress"]["percent"] == 40
    assert (officer[own.pk]["owner"], officer[own.pk]["name"]) == ("carl-compliance", str(own))
    assert list(admin) == [scheduled.pk, own.pk]
    assert viewer == {}


# --- Migration from the table before the job layer


def _migrate(target: str | None = None):
    """Migrate the compliance app to ``target``, or to its newest migration (the state later tests expect)."""
    executor = MigrationExecutor(connection)
    targets = [("compliance", target)] if target else executor.loader.graph.leaf_nodes("compliance")
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_migration_carries_every_state_and_its_progress_over_and_back(transactional_db, compliance_user):
    old_apps = _migrate("0002_report_signature_help_text")
    try:
        OldReport = old_apps.get_model("compliance", "Report")
        start, end = services.previous_month()
        for status, progress in [("queued", 0), ("running", 47), ("completed", 100), ("failed", 12)]:
            OldReport.objects.create(
                kind="usage",
                format="pdf",
                period_start=start,
                period_end=end,
                status=status,
                progress=progress,
                requested_by_id=compliance_user.pk,
            )
        _migrate()

        reports = {report.status: report for report in Report.objects.all()}
        assert {status: (r.percent, r.progress_total, r.owner) for status, r in reports.items()} == {
            "queued": (0, 100, compliance_user),
            "running": (47, 100, compliance_user),
            "completed": (100, 100, compliance_user),
            "failed": (12, 100, compliance_user),
        }
        assert (reports["running"].attempts, reports["running"].started_at) == (1, reports["running"].updated_at)
        assert all(report.queued_at == report.created_at for report in reports.values())
        Report.objects.filter(status="failed").update(status="cancelled")

        old_apps = _migrate("0002_report_signature_help_text")
        OldReport = old_apps.get_model("compliance", "Report")
        assert sorted(OldReport.objects.values_list("status", "progress", "requested_by_id")) == [
            ("completed", 100, compliance_user.pk),
            ("failed", 12, compliance_user.pk),
            ("queued", 0, compliance_user.pk),
            ("running", 47, compliance_user.pk),
        ]
    finally:
        _migrate()
