from django.db import models


class ReportKind(models.TextChoices):
    ACCESS_REVIEW = "access_review", "Access review"
    MFA_COVERAGE = "mfa_coverage", "MFA coverage"
    AUTHENTICATION = "authentication", "Authentication failures and lockouts"
    AUDIT_TRAIL = "audit_trail", "Audit trail"
    PRIVILEGED_CHANGES = "privileged_changes", "Privileged changes"
    BACKUP_EVIDENCE = "backup_evidence", "Backup evidence"
    USAGE = "usage", "Usage"
    SUBJECT_EXPORT = "subject_export", "Data-subject export"


class ReportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    JSON = "json", "JSON"
    PDF = "pdf", "PDF"
