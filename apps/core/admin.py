from django.contrib import admin

from .models import MaintenanceRun


@admin.register(MaintenanceRun)
class MaintenanceRunAdmin(admin.ModelAdmin):
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
