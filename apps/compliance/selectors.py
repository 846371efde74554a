"""Read queries about compliance reports shared by the API, the officer's page, the admin and the tasks."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from apps.audit.hashing import GENESIS_HASH
from apps.audit.models import AuditEvent
from apps.audit.selectors import chain_anchor
from apps.core.choices import Role
from apps.core.permissions import has_role

from .choices import ReportStatus
from .models import Report

# Who reads, generates and downloads evidence reports.
REPORT_ROLES = (Role.COMPLIANCE, Role.ADMIN)
FINISHED_STATUSES = (ReportStatus.COMPLETED, ReportStatus.FAILED)


def report_access_allowed(user) -> bool:
    """Compliance officers and administrators; nobody else sees that reports exist."""
    return has_role(user, *REPORT_ROLES)


def reports_visible_to(user) -> QuerySet[Report]:
    """Every report for compliance officers and administrators (evidence is shared), none for anyone else."""
    reports = Report.objects.select_related("requested_by")
    return reports if report_access_allowed(user) else reports.none()


def reports_recent(user, *, limit: int = 50) -> list[Report]:
    """The newest reports the user may see, without the manifests (the page and the list do not show them)."""
    return list(reports_visible_to(user).defer("manifest")[:limit])


def reports_older_than(cutoff: datetime) -> QuerySet[Report]:
    return Report.objects.filter(created_at__lt=cutoff)


def scheduled_report_exists(*, kind: str, fmt: str, period_start: datetime, period_end: datetime) -> bool:
    """A scheduled report of this kind, format and period was already requested and has not failed."""
    return (
        Report.objects.filter(scheduled=True, kind=kind, format=fmt, period_start=period_start, period_end=period_end)
        .exclude(status=ReportStatus.FAILED)
        .exists()
    )


def audit_head_hash() -> str:
    """The hash of the audit chain's newest event (the anchor's, or the genesis hash, for an empty trail)."""
    head = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
    if head:
        return head
    anchor = chain_anchor()
    return anchor.anchor_hash if anchor else GENESIS_HASH


def report_update_message(report: Report) -> dict:
    """The live ``job.update`` message of a report (README: "Live job updates"): status and percent done."""
    requested_by = report.requested_by
    return {
        "type": "job.update",
        "kind": "report",
        "id": report.pk,
        "name": str(report),
        "owner": requested_by.get_username() if requested_by is not None else "",
        "status": report.status,
        "updated_at": (report.updated_at or timezone.now()).isoformat(),
        "queue_position": None,
        "error": report.error or None,
        "progress": {
            "percent": report.progress,
            "size_bytes": report.size_bytes,
            "sha256": report.sha256 or None,
            "key_fingerprint": report.key_fingerprint or None,
        },
    }
