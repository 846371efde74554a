from django.contrib import admin
from django.template.defaultfilters import pluralize
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask
from unfold.admin import ModelAdmin

from .models import MaintenanceRun
from .services import periodic_tasks_set_enabled


@admin.register(MaintenanceRun)
class MaintenanceRunAdmin(ModelAdmin):
    """Read-only evidence of scheduled maintenance; runs are written by the tasks only."""

    list_display = ["task_name", "status", "started_at", "finished_at", "duration_seconds", "worker"]
    list_filter = ["status", "task_name", "started_at"]
    search_fields = ["task_name", "message", "celery_task_id"]
    date_hierarchy = "started_at"
    readonly_fields = [field.name for field in MaintenanceRun._meta.fields] + ["duration_seconds"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class AuditedPeriodicTaskAdmin(PeriodicTaskAdmin, ModelAdmin):
    """django-celery-beat's admin, with bulk actions that save (and so audit) entry by entry."""

    def _set_enabled(self, request, queryset, enabled: bool | None, verb: str) -> None:
        count = periodic_tasks_set_enabled(tasks=queryset, enabled=enabled)
        self.message_user(request, f"{count} task{pluralize(count)} {pluralize(count, 'was,were')} {verb}.")

    @admin.action(description="Enable selected tasks")
    def enable_tasks(self, request, queryset):
        self._set_enabled(request, queryset, True, "enabled")

    @admin.action(description="Disable selected tasks")
    def disable_tasks(self, request, queryset):
        self._set_enabled(request, queryset, False, "disabled")

    @admin.action(description="Toggle activity of selected tasks")
    def toggle_tasks(self, request, queryset):
        self._set_enabled(request, queryset, None, "toggled")
