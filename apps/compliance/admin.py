"""Compliance reports in the admin: a read-only list and detail; officers generate and download on /compliance/.

Reports are written by the services only (requested, generated, pruned), so the admin never adds, changes or
deletes them.
"""

from __future__ import annotations

from django.contrib import admin
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin

from apps.core.admin_display import json_display
from apps.core.admin_mixins import PortalFormatsAdminMixin, ServiceWrittenAdminMixin
from apps.core.formatting import local_time
from apps.jobs.choices import JobStatus

from .models import Report


@admin.register(Report)
class ReportAdmin(PortalFormatsAdminMixin, ServiceWrittenAdminMixin, ModelAdmin):
    list_display = ["id", "kind", "format", "period", "status", "owner", "scheduled", "size", "created_at"]
    list_filter = ["kind", "format", "status", "scheduled", "created_at"]
    list_select_related = ["owner"]
    search_fields = ["owner__username", "sha256"]
    date_hierarchy = "created_at"
    fieldsets = [
        (None, {"fields": ["id", "kind", "format", "period_start", "period_end", "filter_table", "scheduled"]}),
        (
            "State",
            {
                "fields": [
                    "status",
                    "progress",
                    "error",
                    "owner",
                    "created_at",
                    "started_at",
                    "finished_at",
                    "attempts",
                    "worker",
                ]
            },
        ),
        (
            "Signed file",
            {
                "fields": [
                    "file_link",
                    "size",
                    "sha256",
                    "signature",
                    "key_fingerprint",
                    "audit_head_hash",
                    "row_count_table",
                    "manifest_json",
                ]
            },
        ),
    ]
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.resolver_match and request.resolver_match.url_name.endswith("changelist"):
            return queryset.defer("manifest", "signature")
        return queryset

    @admin.display(description="Period", ordering="period_start")
    def period(self, report: Report) -> str:
        return format_html("{} to {}", local_time(report.period_start), local_time(report.period_end))

    @admin.display(description="Progress")
    def progress(self, report: Report) -> str:
        return f"{report.percent} %"

    @admin.display(description="Size", ordering="size_bytes")
    def size(self, report: Report) -> str:
        return filesizeformat(report.size_bytes) if report.size_bytes is not None else "—"

    @admin.display(description="File")
    def file_link(self, report: Report) -> str:
        if not report.file or report.status != JobStatus.COMPLETED:
            return "—"
        # Downloads go through the compliance page: it asks for a fresh second factor and audits them.
        return format_html(
            '<a href="{}">{}</a> (download on the compliance page, inside the sudo window)',
            reverse("compliance_page:download", args=[report.pk]),
            report.file.name.rsplit("/", 1)[-1],
        )

    @admin.display(description="Manifest")
    def manifest_json(self, report: Report) -> str:
        return json_display(report.manifest)

    @admin.display(description="Filters")
    def filter_table(self, report: Report) -> str:
        return json_display(report.filters)

    @admin.display(description="Rows per section")
    def row_count_table(self, report: Report) -> str:
        return json_display(report.row_counts, headers=("Section", "Rows"), label_keys=False)
