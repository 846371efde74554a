"""Compliance reports as jobs: what the job layer needs to queue, stream and audit them (kind "report")."""

from __future__ import annotations

from django.urls import reverse

from apps.core.events import notify
from apps.jobs.choices import JobStatus
from apps.jobs.kinds import ADMINISTRATORS, JobKind

from .models import Report
from .selectors import reports_streamed_to


def _send(reports: list[Report]) -> None:
    from .tasks import generate_report  # the tasks import the services, which import this module

    for report in reports:
        generate_report.delay(report.pk)


def _details(report: Report) -> dict:
    """The report's name and, beside done/total, its percent and, once generated, its file's size, hash and key."""
    return {
        "name": str(report),
        "progress": {
            "percent": report.percent,
            "size_bytes": report.size_bytes,
            "sha256": report.sha256 or None,
            "key_fingerprint": report.key_fingerprint or None,
        },
    }


def _changes(report: Report) -> dict:
    if report.status != JobStatus.COMPLETED:
        return {"status": report.status, "error": report.error}
    return {
        "sha256": report.sha256,
        "size_bytes": report.size_bytes,
        "key_fingerprint": report.key_fingerprint,
        "row_counts": report.row_counts,
        "audit_head_hash": report.audit_head_hash,
    }


def _report_finished(report: Report) -> None:
    """A completed report is ready: its requester is told (``report.ready``)."""
    if report.status != JobStatus.COMPLETED:
        return
    notify(
        "report.ready",
        data={
            "report_id": report.pk,
            "name": str(report),
            "kind": report.kind,
            "format": report.format,
            "path": reverse("compliance_page:detail", args=[report.pk]),
        },
        user=report.owner,
        obj=report,
        summary=f"{report} is ready to download",
    )


REPORT_KIND = JobKind(
    name="report",
    model=Report,
    audit_prefix="compliance.report",
    audit_actions={
        "submitted": "compliance.report.requested",
        "completed": "compliance.report.generated",
        "failed": "compliance.report.generated",
    },
    send=_send,
    # Evidence about every account: its requester and administrators, not everyone who watches all jobs.
    audience=ADMINISTRATORS,
    visible_to=reports_streamed_to,
    details=_details,
    changes=_changes,
    ended_for_owner=True,
    on_finished=_report_finished,
    page=lambda report: reverse("compliance_page:detail", args=[report.pk]),
)
