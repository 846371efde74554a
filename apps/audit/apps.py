from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from django_celery_beat import models as beat

        from apps.core.health import health_check_register

        from . import receivers  # connects the auth and model-change receivers
        from .health import FORWARDING_CHECK
        from .registry import audit_register

        receivers.connect_delete_receivers()
        health_check_register(FORWARDING_CHECK)
        # Beat rewrites its run bookkeeping on every run; only real schedule changes are events.
        run_bookkeeping = ("last_run_at", "total_run_count", "date_changed")
        for model in (beat.PeriodicTask, beat.CrontabSchedule, beat.IntervalSchedule, beat.SolarSchedule,
                      beat.ClockedSchedule):  # fmt: skip
            audit_register(model, action_prefix="schedule", ignored_fields=run_bookkeeping)
