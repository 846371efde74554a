"""The audit trail in the admin: read-only for everyone, superusers included; cheap on a large table."""

from __future__ import annotations

import json

from django.apps import apps
from django.contrib import admin
from django.db import connections
from django.utils.html import format_html, format_html_join
from unfold.admin import ModelAdmin

from apps.core.admin_mixins import PortalFormatsAdminMixin, ServiceWrittenAdminMixin
from apps.core.paginators import EstimatedCountPaginator

from .models import AuditArchive, AuditCheckpoint, AuditEvent
from .permissions import CanReadAuditTrail

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
        ("Hash chain", {"fields": ["prev_hash", "hash"]}),
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
