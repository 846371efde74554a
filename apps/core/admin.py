from django.contrib import admin
from django.template.defaultfilters import pluralize
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask
from unfold.admin import ModelAdmin

from .admin_mixins import PortalFormatsAdminMixin
from .formatting import local_time
from .models import MaintenanceRun
from .schedules import next_run, schedule_text
from .services import periodic_tasks_set_enabled


def _with_schedule_in_words(fieldsets) -> tuple:
    """django-celery-beat's fieldsets, its crontab translation replaced by the schedule in words and the next run."""
    return tuple(
        (title, {**options, "fields": tuple(_schedule_fields(options["fields"]))}) for title, options in fieldsets
    )


def _schedule_fields(fields):
    for field in fields:
        if field == "crontab_translation":
            yield from ("schedule", "next_run_at")
        else:
            yield field


@admin.register(MaintenanceRun)
class MaintenanceRunAdmin(PortalFormatsAdminMixin, ModelAdmin):
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
class AuditedPeriodicTaskAdmin(PortalFormatsAdminMixin, PeriodicTaskAdmin, ModelAdmin):
    """django-celery-beat's admin, with schedules in words, the next run, and bulk actions that save (and so audit)
    entry by entry."""

    list_display = ("name", "enabled", "schedule", "next_run_at", "last_run", "one_off")
    list_select_related = ("crontab", "interval", "solar", "clocked")
    fieldsets = _with_schedule_in_words(PeriodicTaskAdmin.fieldsets)
    readonly_fields = ("schedule", "next_run_at", "last_run_at")
    # The admin's own form, not django-celery-beat's: its inline script (refused by the Content-Security-Policy)
    # only wrote the crontab translation, which "schedule" replaces above.
    change_form_template = None

    @admin.display(description="Schedule")
    def schedule(self, task: PeriodicTask) -> str:
        return schedule_text(task)

    @admin.display(description="Next run")
    def next_run_at(self, task: PeriodicTask) -> str:
        upcoming = next_run(task)
        if upcoming is None:
            return "—" if task.scheduler is None else "not again" if task.enabled else "paused"
        return local_time(upcoming)

    @admin.display(description="Last run", ordering="last_run_at")
    def last_run(self, task: PeriodicTask) -> str:
        return local_time(task.last_run_at) if task.last_run_at else "never"

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
