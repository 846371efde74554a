from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Portal core"

    def ready(self) -> None:
        from django.contrib import admin
        from django_celery_beat import models as beat

        from apps.audit.registry import audit_register

        from . import metrics, request_context  # noqa: F401 - connect their Celery signal receivers

        # Beat rewrites its run bookkeeping on every run; only real schedule changes are events.
        run_bookkeeping = ("last_run_at", "total_run_count", "date_changed")
        for model in (beat.PeriodicTask, beat.CrontabSchedule, beat.IntervalSchedule, beat.SolarSchedule,
                      beat.ClockedSchedule):  # fmt: skip
            audit_register(model, action_prefix="schedule", ignored_fields=run_bookkeeping)

        admin.site.site_header = "Opsdeck administration"
        admin.site.site_title = "Opsdeck"
        admin.site.index_title = "Operations"
