"""Read queries about compliance reports shared by the API, the officer's page, the admin and the tasks."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from apps.audit.hashing import GENESIS_HASH
from apps.audit.models import AuditEvent
from apps.audit.selectors import chain_anchor
from apps.core.choices import Role
from apps.core.permissions import has_role
from apps.jobs.choices import JobStatus

from .models import Report

# Who reads, generates and downloads evidence reports.
REPORT_ROLES = (Role.COMPLIANCE, Role.ADMIN)


def report_access_allowed(user) -> bool:
    """Compliance officers and administrators; nobody else sees that reports exist."""
    return has_role(user, *REPORT_ROLES)


def reports_visible_to(user) -> QuerySet[Report]:
    """Every report for compliance officers and administrators (evidence is shared), none for anyone else."""
    reports = Report.objects.select_related("owner")
    return reports if report_access_allowed(user) else reports.none()


def reports_streamed_to(user) -> QuerySet[Report]:
    """The reports whose live updates reach the user on /ws/jobs/: every one for administrators, their own for
    compliance officers (as published: to the requester and to administrators)."""
    if has_role(user, Role.ADMIN):
        return Report.objects.all()
    return Report.objects.filter(owner=user) if report_access_allowed(user) else Report.objects.none()


def reports_recent(user, *, limit: int = 50) -> list[Report]:
    """The newest reports the user may see, without the manifests (the page and the list do not show them)."""
    return list(reports_visible_to(user).defer("manifest")[:limit])


def reports_older_than(cutoff: datetime) -> QuerySet[Report]:
    return Report.objects.filter(created_at__lt=cutoff)


def scheduled_report_exists(*, kind: str, fmt: str, period_start: datetime, period_end: datetime) -> bool:
    """A scheduled report of this kind, format and period was already requested and has not failed."""
    return (
        Report.objects.filter(scheduled=True, kind=kind, format=fmt, period_start=period_start, period_end=period_end)
        .exclude(status=JobStatus.FAILED)
        .exists()
    )


def audit_head_hash() -> str:
    """The hash of the audit chain's newest event (the anchor's, or the genesis hash, for an empty trail)."""
    head = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
    if head:
        return head
    anchor = chain_anchor()
    return anchor.anchor_hash if anchor else GENESIS_HASH
