"""Backups in the admin: the list, a read-only detail with the verification report, create, verify and restore as
jobs a worker runs (the restore confirmed behind re-authentication), and the read-only list of backup jobs.

Backups are made by the services only, so the admin neither adds, edits nor deletes them (retention prunes them).
Creating, verifying and restoring are for administrators; compliance officers may look at the list as evidence.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin

from apps.accounts.sudo import sudo_redirect, sudo_second_factor_fresh
from apps.core.admin_display import json_display
from apps.core.admin_mixins import PortalFormatsAdminMixin, ServiceWrittenAdminMixin, queue_refusal_message
from apps.core.choices import Role
from apps.core.permissions import has_role
from apps.core.queueing import QueueUnavailable

from . import selectors, services
from .choices import BackupOperation
from .jobs import backup_job_request
from .keys import BackupKeyError
from .models import Backup, BackupJob
from .templatetags.backup_status import duration as duration_text

# Each verification restores a whole database into a scratch one on the maintenance worker: keep a selection small.
MAX_VERIFY_SELECTED = 5
RESTORE_TEMPLATE = "admin/backups/backup/restore.html"
SERVICE_ERRORS = (services.BackupError, BackupKeyError)


def _job_queued(job: BackupJob, doing: str) -> str:
    """The message that a job was queued, linking to its page."""
    url = reverse("admin:backups_backupjob_change", args=[job.pk])
    return format_html('<a href="{}">{}</a> queued: {}; its page shows how it goes.', url, job, doing)


@admin.register(Backup)
class BackupAdmin(PortalFormatsAdminMixin, ServiceWrittenAdminMixin, ModelAdmin):
    list_display = ["id", "started_at", "status", "trigger", "size", "duration", "verified_at"]
    list_filter = ["status", "trigger", "started_at", "verified_at"]
    date_hierarchy = "started_at"
    actions = ["verify_selected"]
    fieldsets = [
        (None, {"fields": ["id", "status", "error", "trigger", "triggered_by"]}),
        ("Timings", {"fields": ["started_at", "finished_at", "duration"]}),
        (
            "File",
            {"fields": ["storage_name", "path", "size", "plain_size", "sha256", "compression", "key_id"]},
        ),
        ("Database", {"fields": ["database_engine", "server_version", "migrations_applied", "row_count_table"]}),
        ("Verification", {"fields": ["verified_at", "verification_report"]}),
    ]
    readonly_fields = [name for _, options in fieldsets for name in options["fields"]]

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("triggered_by")
        if request.resolver_match and request.resolver_match.url_name.endswith("changelist"):
            return queryset.defer("row_counts", "migrations", "verification")
        return queryset

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("create/", self.admin_site.admin_view(self.create_view), name=f"{prefix}_create"),
            path("<path:object_id>/restore/", self.admin_site.admin_view(self.restore_view), name=f"{prefix}_restore"),
            *super().get_urls(),
        ]

    def has_operate_permission(self, request) -> bool:
        """Who creates, verifies and restores backups: administrators only."""
        return has_role(request.user, Role.ADMIN)

    def changelist_view(self, request, extra_context=None):
        context = {**(extra_context or {}), "may_operate": self.has_operate_permission(request)}
        return super().changelist_view(request, context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        backup = self.get_object(request, unquote(object_id))
        restorable = backup is not None and backup.status in selectors.RESTORABLE
        context = {**(extra_context or {}), "may_restore": restorable and self.has_operate_permission(request)}
        return super().change_view(request, object_id, form_url, context)

    # --- Columns and detail fields

    @admin.display(description="Size", ordering="size_bytes")
    def size(self, backup: Backup) -> str:
        return filesizeformat(backup.size_bytes) if backup.size_bytes is not None else "—"

    @admin.display(description="Size before compression", ordering="plain_bytes")
    def plain_size(self, backup: Backup) -> str:
        return filesizeformat(backup.plain_bytes) if backup.plain_bytes is not None else "—"

    @admin.display(description="Duration", ordering="duration_seconds")
    def duration(self, backup: Backup) -> str:
        return duration_text(backup.duration_seconds)

    @admin.display(description="Migrations")
    def migrations_applied(self, backup: Backup) -> str:
        return json_display(backup.migrations, headers=("App", "Latest migration"), label_keys=False)

    @admin.display(description="Rows per table")
    def row_count_table(self, backup: Backup) -> str:
        return json_display(backup.row_counts, headers=("Table", "Rows"), label_keys=False)

    @admin.display(description="Verification report")
    def verification_report(self, backup: Backup) -> str:
        return json_display(backup.verification)

    # --- Create and verify

    def create_view(self, request):
        """The changelist's "Create a backup now" button posts here: a job is queued, its page shows the progress."""
        if not self.has_operate_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            job = backup_job_request(BackupOperation.CREATE, request.user)
        except SERVICE_ERRORS as exc:
            self.message_user(request, f"No backup was queued: {exc}", messages.ERROR)
        except QueueUnavailable as exc:
            queue_refusal_message(self, request, exc)
        else:
            self.message_user(request, _job_queued(job, "a worker takes the backup"), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:backups_backup_changelist"))

    @admin.action(description="Verify selected backups (restore each into a scratch database)", permissions=["operate"])
    def verify_selected(self, request, queryset):
        backups = list(queryset.order_by("-started_at", "-id")[: MAX_VERIFY_SELECTED + 1])
        if len(backups) > MAX_VERIFY_SELECTED:
            self.message_user(
                request,
                f"More than {MAX_VERIFY_SELECTED} backups were selected; each verification restores a whole "
                f"database, so verify at most {MAX_VERIFY_SELECTED} at a time.",
                messages.ERROR,
            )
            return
        for index, backup in enumerate(backups):
            try:
                job = backup_job_request(BackupOperation.VERIFY, request.user, backup=backup)
            except SERVICE_ERRORS as exc:
                self.message_user(request, f"{backup} was not verified: {exc}", messages.ERROR)
            except QueueUnavailable as exc:
                queue_refusal_message(self, request, exc, left=len(backups) - index - 1)
                return
            else:
                self.message_user(request, _job_queued(job, f"it verifies {backup}"), messages.SUCCESS)

    # --- Restore

    def restore_view(self, request, object_id):
        """Confirm, then replace the database with the backup (a safety backup is taken first).

        Needs sudo mode with a fresh authenticator code: without it, a GET goes to the re-authentication page and
        comes back here, and a POST is refused before anything is touched.
        """
        if not self.has_operate_permission(request):
            raise PermissionDenied
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        backup = self.get_object(request, unquote(object_id))
        if backup is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        restore_url = reverse("admin:backups_backup_restore", args=[backup.pk])
        if not sudo_second_factor_fresh(request):
            if request.method == "POST":
                self.message_user(
                    request,
                    "Nothing was restored: a restore needs your password and a fresh authenticator code. "
                    "Confirm them, then confirm the restore again.",
                    messages.ERROR,
                )
            return sudo_redirect(request, restore_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Restore {backup}",
            "backup": backup,
            "restorable": backup.status in selectors.RESTORABLE,
        }
        if request.method == "POST" and context["restorable"]:
            try:
                job = backup_job_request(BackupOperation.RESTORE, request.user, backup=backup)
            except (*SERVICE_ERRORS, QueueUnavailable) as exc:
                context["error"] = str(exc)
            else:
                doing = f"a worker takes a safety backup, then restores {backup}; you may have to sign in again after"
                self.message_user(request, _job_queued(job, doing), messages.SUCCESS)
                return redirect("admin:backups_backupjob_change", job.pk)
        return TemplateResponse(request, RESTORE_TEMPLATE, context)


@admin.register(BackupJob)
class BackupJobAdmin(PortalFormatsAdminMixin, ServiceWrittenAdminMixin, ModelAdmin):
    """Backup jobs as workers run them: read-only (the API and the backup list's buttons make them)."""

    list_display = ["id", "operation", "status", "backup_link", "owner", "written", "created_at", "duration", "error"]
    list_filter = ["status", "operation", "created_at"]
    list_select_related = ["owner"]
    fields = [
        "id", "operation", "status", "backup_link", "owner", "written", "cancellable", "error", "created_at",
        "queued_at", "started_at", "finished_at", "duration", "attempts", "max_attempts", "worker", "heartbeat_at",
    ]  # fmt: skip
    readonly_fields = fields

    @admin.display(description="Backup", ordering="backup")
    def backup_link(self, job: BackupJob) -> str:
        if job.backup_id is None:
            return "—"
        url = reverse("admin:backups_backup_change", args=[job.backup_id])
        return format_html('<a href="{}">Backup #{}</a>', url, job.backup_id)

    @admin.display(description="Written", ordering="progress_done")
    def written(self, job: BackupJob) -> str:
        return filesizeformat(job.progress_done) if job.operation == BackupOperation.CREATE else "—"

    @admin.display(description="Duration", ordering="duration_seconds")
    def duration(self, job: BackupJob) -> str:
        return duration_text(job.duration_seconds)
