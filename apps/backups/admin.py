"""Backups in the admin: the list, a read-only detail with the verification report, create and verify through the
services, and the restore page behind re-authentication.

Backups are made by the services only, so the admin neither adds, edits nor deletes them (retention prunes them).
Creating, verifying and restoring are for administrators; compliance officers may look at the list as evidence.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from apps.accounts.sudo import sudo_redirect, sudo_second_factor_fresh
from apps.core.admin_mixins import ServiceWrittenAdminMixin
from apps.core.choices import Role
from apps.core.permissions import has_role

from . import restore, selectors, services
from .choices import BackupStatus, BackupTrigger
from .keys import BackupKeyError
from .models import Backup

# Each verification restores the backup into a scratch database, inside the request: keep a selection small.
MAX_VERIFY_SELECTED = 5
RESTORE_TEMPLATE = "admin/backups/backup/restore.html"
SERVICE_ERRORS = (services.BackupError, BackupKeyError)


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 120:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min {seconds} s"


def _json_block(value) -> str:
    if not value:
        return "—"
    return format_html(
        '<pre style="max-height: 32em; overflow: auto">{}</pre>', json.dumps(value, indent=2, sort_keys=True)
    )


@admin.register(Backup)
class BackupAdmin(ServiceWrittenAdminMixin, admin.ModelAdmin):
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
        return _seconds(backup.duration_seconds)

    @admin.display(description="Migrations")
    def migrations_applied(self, backup: Backup) -> str:
        return _json_block(backup.migrations)

    @admin.display(description="Rows per table")
    def row_count_table(self, backup: Backup) -> str:
        if not backup.row_counts:
            return "—"
        return format_html(
            '<table class="backup-row-counts"><thead><tr><th>Table</th><th>Rows</th></tr></thead><tbody>{}</tbody>'
            "</table>",
            format_html_join(
                "", "<tr><td>{}</td><td>{}</td></tr>", ((table, f"{n:,}") for table, n in backup.row_counts.items())
            ),
        )

    @admin.display(description="Verification report")
    def verification_report(self, backup: Backup) -> str:
        return _json_block(backup.verification)

    # --- Create and verify

    def create_view(self, request):
        """The changelist's "Create a backup now" button posts here; the backup is made before the page returns."""
        if not self.has_operate_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            backup = services.backup_create(trigger=BackupTrigger.USER, actor=request.user)
        except SERVICE_ERRORS as exc:
            self.message_user(request, f"The backup failed: {exc}", messages.ERROR)
        else:
            self.message_user(
                request,
                f"{backup} completed: {filesizeformat(backup.size_bytes)} in {_seconds(backup.duration_seconds)}.",
                messages.SUCCESS,
            )
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
        for backup in backups:
            try:
                backup = restore.backup_verify(backup=backup, actor=request.user)
            except SERVICE_ERRORS as exc:
                self.message_user(request, f"{backup} was not verified: {exc}", messages.ERROR)
                continue
            if backup.status == BackupStatus.VERIFIED:
                self.message_user(request, f"{backup} verified by a restore.", messages.SUCCESS)
            else:
                self.message_user(
                    request, f"{backup} failed its verification: {backup.verification['message']}", messages.ERROR
                )

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
                safety = restore.backup_restore(backup=backup, actor=request.user)
            except SERVICE_ERRORS as exc:
                context["error"] = str(exc)
            else:
                # The database now holds the backup's rows: show the outcome on this response rather than
                # relying on a session and messages that may not exist in the restored database.
                context["safety"] = safety
        return TemplateResponse(request, RESTORE_TEMPLATE, context)
