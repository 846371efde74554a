"""The audit trail in the admin: read-only for everyone, superusers included; cheap on a large table."""

from __future__ import annotations

import json
from pathlib import Path

from django import forms
from django.apps import apps
from django.conf import settings
from django.contrib import admin, messages
from django.db import connections
from django.utils.html import format_html, format_html_join
from unfold.admin import ModelAdmin
from unfold.widgets import UnfoldAdminPasswordWidget

from apps.core.admin_mixins import PortalFormatsAdminMixin, ServiceWrittenAdminMixin, queue_refusal_message
from apps.core.choices import Role
from apps.core.formatting import count
from apps.core.paginators import EstimatedCountPaginator
from apps.core.permissions import has_role
from apps.core.queueing import QueueUnavailable

from .forwarding import AUDITED_FIELDS, sink_delete, sink_lag, sink_save, sink_send_now
from .models import AuditArchive, AuditCheckpoint, AuditEvent, AuditSink
from .permissions import CanReadAuditTrail
from .sink_urls import SinkUrlError, sink_url_parse, url_masked

# Enough for every action the portal records; a longer list would be unusable as a filter anyway.
MAX_LISTED_ACTIONS = 300
# A loose index scan: one index probe per distinct action, instead of reading every row.
DISTINCT_ACTIONS_SQL = """
WITH RECURSIVE actions(action) AS (
    (SELECT action FROM {table} ORDER BY action LIMIT 1)
    UNION ALL
    SELECT (SELECT e.action FROM {table} e WHERE e.action > actions.action ORDER BY e.action LIMIT 1)
    FROM actions WHERE actions.action IS NOT NULL
)
SELECT action FROM actions WHERE action IS NOT NULL LIMIT %s
"""
ABSENT = object()
# Characters of a sink's last error shown in its list; its page shows all of it.
ERROR_SHOWN = 120


def _distinct_actions() -> list[str]:
    connection = connections[AuditEvent.objects.db]
    if connection.vendor != "postgresql":
        return list(
            AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct()[:MAX_LISTED_ACTIONS]
        )
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(DISTINCT_ACTIONS_SQL.format(table=table), [MAX_LISTED_ACTIONS])
        return [row[0] for row in cursor.fetchall()]


class ActionListFilter(admin.SimpleListFilter):
    title = "action"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return [(action, action) for action in _distinct_actions()]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(action=value) if value else queryset


def _cell(value) -> str:
    if value is ABSENT:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _is_diff(value) -> bool:
    return isinstance(value, dict) and bool(value) and set(value) <= {"before", "after"}


def _is_snapshot(changes: dict, key: str) -> bool:
    # {"after": {...}} is a whole new row, unless it is the diff of a field that happens to be called "after".
    return set(changes) == {key} and isinstance(changes[key], dict) and not _is_diff(changes[key])


def change_rows(changes) -> list[tuple[str, str, str]]:
    """(field, before, after) rows of an event's ``changes``, whichever shape the event recorded."""
    if not isinstance(changes, dict):
        return [("", "—", _cell(changes))]
    if _is_snapshot(changes, "after"):  # created: the new row
        pairs = [(name, ABSENT, value) for name, value in changes["after"].items()]
    elif _is_snapshot(changes, "before"):  # deleted: the old row
        pairs = [(name, value, ABSENT) for name, value in changes["before"].items()]
    else:
        pairs = []
        for name, value in changes.items():
            if _is_diff(value):
                pairs.append((name, value.get("before", ABSENT), value.get("after", ABSENT)))
            else:  # a detail of the event (method, path, status...) or an m2m change
                pairs.append((name, ABSENT, value))
    return [(str(name), _cell(before), _cell(after)) for name, before, after in sorted(pairs, key=lambda p: str(p[0]))]


def duration_text(seconds: float) -> str:
    """A lag in the largest fitting unit: "42 s", "12 min", "3.5 h", "2.0 days"."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _object_kind(object_type: str) -> str:
    """``django_celery_beat.periodictask`` → "periodic task": the model's name in words, when the model exists."""
    try:
        return apps.get_model(object_type)._meta.verbose_name
    except (LookupError, ValueError):
        return object_type


class ReadOnlyAuditAdmin(PortalFormatsAdminMixin, ServiceWrittenAdminMixin, ModelAdmin):
    """Nobody writes the audit tables through the admin; the services are their only writers."""

    actions = None

    def has_module_permission(self, request) -> bool:
        return CanReadAuditTrail.allows(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return CanReadAuditTrail.allows(request.user)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAuditAdmin):
    # The object's name over its kind in one column, so that the list fits a laptop's width.
    list_display = ["id", "timestamp", "action", "outcome", "actor", "ip", "object_display"]
    list_filter = [ActionListFilter, "outcome", "actor"]
    date_hierarchy = "timestamp"
    # Exact and prefix lookups only, so the indexes (request_id, action...) stay usable.
    search_fields = ["actor_username__exact", "object_repr__startswith", "object_id__exact", "request_id__exact"]
    search_help_text = "Exact username, object id or request id; or the start of the object's name."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fieldsets = [
        (None, {"fields": ["id", "timestamp", "action", "outcome"]}),
        ("Who", {"fields": ["actor", "actor_username", "ip", "user_agent", "request_id"]}),
        ("Object", {"fields": ["object_type", "object_id", "object_repr"]}),
        ("Changes", {"fields": ["changes_table"]}),
        ("Hash chain", {"fields": ["chain", "prev_hash", "hash"]}),
    ]
    readonly_fields = [field.name for field in AuditEvent._meta.fields] + ["changes_table"]

    @admin.display(description="actor", ordering="actor_username")
    def actor(self, event: AuditEvent) -> str:
        return event.actor_username or "—"

    @admin.display(description="object")
    def object_display(self, event: AuditEvent) -> str:
        if not event.object_type:
            return "—"
        return format_html(
            '{}<div class="text-subtle text-xs">{}</div>', event.object_repr or "—", _object_kind(event.object_type)
        )

    @admin.display(description="changes")
    def changes_table(self, event: AuditEvent) -> str:
        rows = change_rows(event.changes)
        if not rows:
            return "—"
        return format_html(
            '<table class="audit-changes"><thead><tr><th>Field</th><th>Before</th><th>After</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAuditAdmin):
    list_display = ["id", "created", "head_id", "event_count", "head_hash"]
    date_hierarchy = "created"
    readonly_fields = [field.name for field in AuditCheckpoint._meta.fields]


@admin.register(AuditArchive)
class AuditArchiveAdmin(ReadOnlyAuditAdmin):
    list_display = ["id", "created", "before", "first_id", "last_id", "event_count", "file_name"]
    date_hierarchy = "created"
    readonly_fields = [field.name for field in AuditArchive._meta.fields]


class AuditSinkForm(forms.ModelForm):
    # Never shown back, since it may carry credentials: empty keeps the stored URL.
    url = forms.CharField(
        label="URL",
        required=False,
        max_length=1000,
        widget=UnfoldAdminPasswordWidget(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="syslog+tcp://host:514, syslog+tls://host:6514[?ca_file=/path/ca.pem] or "
        "https://[user:password@]host/path (https://bearer:TOKEN@host/path sends a bearer token). "
        "Leave empty to keep the current URL, which is never shown again.",
    )

    class Meta:
        model = AuditSink
        fields = ["name", "url", "tls_ca_file", "active", "cursor"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The form's own initial value travels with it: a cursor the forwarder moved on after the form was opened
        # is not taken back to what the form showed unless the administrator changed it.
        self.fields["cursor"].show_hidden_initial = True

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        if not url:
            if self.instance.pk:
                return self.instance.url
            raise forms.ValidationError("Enter the collector's URL.")
        try:
            sink_url_parse(url, allow_http=settings.AUDIT_FORWARD_ALLOW_HTTP)
        except SinkUrlError as exc:
            raise forms.ValidationError(str(exc)) from None
        return url

    def clean_cursor(self) -> int:
        cursor = self.cleaned_data["cursor"]
        newest = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        if cursor is not None and not 0 <= cursor <= newest:
            raise forms.ValidationError(f"The cursor must be an event id from 0 (send everything) to #{newest}.")
        return cursor

    def clean_tls_ca_file(self) -> str:
        path = self.cleaned_data["tls_ca_file"].strip()
        if path and not Path(path).is_file():
            raise forms.ValidationError(f"No file at {path} on this server.")
        return path


@admin.register(AuditSink)
class AuditSinkAdmin(PortalFormatsAdminMixin, ModelAdmin):
    """Collectors the audit trail is forwarded to: administrators configure them, audit readers see their state."""

    form = AuditSinkForm
    # One column for the lag and one for failures, so that the list fits a laptop's width.
    list_display = ["name", "target", "active", "waiting", "last_success_at", "failures"]
    list_filter = ["active", "managed"]
    actions = ["send_now"]
    readonly_fields = [
        "target",
        "managed",
        "lag_events",
        "lag_age",
        "last_success_at",
        "last_failure_at",
        "consecutive_failures",
        "last_error",
        "forwarded_total",
        "created",
    ]
    fieldsets = [
        (None, {"fields": ["name", "target", "url", "tls_ca_file", "active", "managed"]}),
        (
            "Progress",
            {
                "fields": ["cursor", "lag_events", "lag_age", "forwarded_total", "last_success_at"],
                "description": "Lower the cursor to send events again from that id on; raise it to skip events "
                "(the change is recorded in the audit trail).",
            },
        ),
        ("Failures", {"fields": ["consecutive_failures", "last_failure_at", "last_error"]}),
    ]

    def has_module_permission(self, request) -> bool:
        return CanReadAuditTrail.allows(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return CanReadAuditTrail.allows(request.user)

    def has_add_permission(self, request) -> bool:
        return has_role(request.user, Role.ADMIN)

    def has_change_permission(self, request, obj=None) -> bool:
        # Sinks from AUDIT_FORWARD_URLS are changed there: the next run would undo an edit made here.
        return has_role(request.user, Role.ADMIN) and not (obj is not None and obj.managed)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.has_change_permission(request, obj)

    def has_send_permission(self, request) -> bool:
        return has_role(request.user, Role.ADMIN)

    @admin.display(description="target")
    def target(self, sink: AuditSink) -> str:
        return format_html('<span class="cell-message">{}</span>', url_masked(sink.url))

    def _lag(self, sink: AuditSink) -> tuple[int, float]:
        cached = getattr(sink, "_lag", None)
        if cached is None:
            cached = sink._lag = sink_lag(sink)
        return cached

    @admin.display(description="waiting")
    def waiting(self, sink: AuditSink) -> str:
        events, seconds = self._lag(sink)
        if not events:
            return "none"
        return format_html(
            '<div><div class="whitespace-nowrap">{}</div>'
            '<div class="text-subtle text-xs whitespace-nowrap">oldest {}</div></div>',
            count(events, "event"),
            duration_text(seconds),
        )

    @admin.display(description="failures")
    def failures(self, sink: AuditSink) -> str:
        if not sink.consecutive_failures:
            return "none"
        error = sink.last_error if len(sink.last_error) <= ERROR_SHOWN else sink.last_error[: ERROR_SHOWN - 1] + "…"
        return format_html(
            '<div class="cell-message"><div class="whitespace-nowrap">{}</div>'
            '<div class="text-subtle text-xs cell-detail">{}</div></div>',
            count(sink.consecutive_failures, "failed attempt"),
            error,
        )

    @admin.display(description="events waiting")
    def lag_events(self, sink: AuditSink) -> str:
        return f"{self._lag(sink)[0]:,}"

    @admin.display(description="oldest waiting")
    def lag_age(self, sink: AuditSink) -> str:
        events, seconds = self._lag(sink)
        return duration_text(seconds) if events else "—"

    def save_model(self, request, obj, form, change) -> None:
        fields = [name for name in form.changed_data if name in AUDITED_FIELDS] if change else None
        sink_save(sink=obj, fields=fields)

    def delete_model(self, request, obj) -> None:
        sink_delete(sink=obj)

    def delete_queryset(self, request, queryset) -> None:
        for sink in queryset:
            sink_delete(sink=sink)

    @admin.action(description="Send now (pending events of the selected sinks)", permissions=["send"])
    def send_now(self, request, queryset):
        for sink in queryset.order_by("name"):
            if not sink.active:
                self.message_user(request, f"{sink.name} is inactive: nothing is sent to it.", messages.WARNING)
                continue
            try:
                sink_send_now(sink=sink)
            except QueueUnavailable as exc:
                queue_refusal_message(self, request, exc)
                return
            self.message_user(request, f"Sending to {sink.name} was queued.", messages.SUCCESS)
