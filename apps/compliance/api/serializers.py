"""Compliance report API bodies: the request, the report as listed and in detail."""

from rest_framework import serializers
from rest_framework.reverse import reverse

from apps.core.datetimes import StorableDateTimeField
from apps.jobs.choices import JobStatus

from ..choices import ReportFormat, ReportKind
from ..models import Report


class ReportRequestSerializer(serializers.Serializer):
    """What to report on. Kinds, formats, periods and filters are checked by the service, whose messages name
    the allowed values and limits."""

    kind = serializers.CharField(help_text=f"One of: {', '.join(ReportKind.values)}.")
    period_start = StorableDateTimeField(help_text="Start of the period (ISO 8601; UTC when no offset).")
    period_end = StorableDateTimeField(
        help_text="End of the period (excluded); not in the future, at most REPORT_MAX_PERIOD_DAYS after the start."
    )
    format = serializers.CharField(
        default=ReportFormat.PDF, help_text=f"One of: {', '.join(ReportFormat.values)} (default pdf)."
    )
    filters = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        default=dict,
        help_text='audit_trail: "action_prefix", "actor"; subject_export: "username" (required).',
    )


class ReportSerializer(serializers.ModelSerializer):
    """A report: what was asked, its state and progress, and the signed file's size, hash and key."""

    # Plain strings in the schema: other apps' enums already own the names "kind" and "status".
    kind = serializers.CharField(read_only=True, help_text=f"One of: {', '.join(ReportKind.values)}.")
    status = serializers.CharField(read_only=True, help_text=f"One of: {', '.join(JobStatus.values)}.")
    progress = serializers.IntegerField(source="percent", read_only=True, help_text="Percent done.")
    requested_by = serializers.SlugRelatedField(
        source="owner",
        slug_field="username",
        read_only=True,
        help_text="Who asked for it; null for the monthly schedule.",
    )
    row_counts = serializers.DictField(child=serializers.IntegerField(), help_text="Rows per section.")
    download_url = serializers.SerializerMethodField(help_text="The file (completed reports; sudo window).")
    manifest_url = serializers.SerializerMethodField(help_text="The signed manifest (completed reports).")

    class Meta:
        model = Report
        fields = [
            "id",
            "kind",
            "format",
            "period_start",
            "period_end",
            "filters",
            "status",
            "progress",
            "requested_by",
            "scheduled",
            "created_at",
            "finished_at",
            "size_bytes",
            "sha256",
            "key_fingerprint",
            "row_counts",
            "error",
            "download_url",
            "manifest_url",
        ]
        read_only_fields = fields

    def _link(self, report: Report, name: str) -> str | None:
        if report.status != JobStatus.COMPLETED or not report.file:
            return None
        return reverse(f"compliance:report-{name}", kwargs={"pk": report.pk}, request=self.context.get("request"))

    def get_download_url(self, report: Report) -> str | None:
        return self._link(report, "download")

    def get_manifest_url(self, report: Report) -> str | None:
        return self._link(report, "manifest")


class ReportDetailSerializer(ReportSerializer):
    """A report with its signature and the audit chain's head when it was generated."""

    class Meta(ReportSerializer.Meta):
        fields = [*ReportSerializer.Meta.fields, "signature", "audit_head_hash"]
        read_only_fields = fields
