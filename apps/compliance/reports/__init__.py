"""Report kinds: each a function of ReportParams that yields Sections of rows; rendering is separate."""

from __future__ import annotations

from ..choices import ReportKind
from .access import access_review, mfa_coverage
from .audit import audit_trail, authentication, privileged_changes
from .backups import backup_evidence
from .base import ReportBuilder, ReportParams, Section
from .usage import subject_export, usage

REPORT_BUILDERS: dict[str, ReportBuilder] = {
    ReportKind.ACCESS_REVIEW.value: access_review,
    ReportKind.MFA_COVERAGE.value: mfa_coverage,
    ReportKind.AUTHENTICATION.value: authentication,
    ReportKind.AUDIT_TRAIL.value: audit_trail,
    ReportKind.PRIVILEGED_CHANGES.value: privileged_changes,
    ReportKind.BACKUP_EVIDENCE.value: backup_evidence,
    ReportKind.USAGE.value: usage,
    ReportKind.SUBJECT_EXPORT.value: subject_export,
}

__all__ = ["REPORT_BUILDERS", "ReportBuilder", "ReportParams", "Section"]
