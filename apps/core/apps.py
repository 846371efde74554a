from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Portal core"

    def ready(self) -> None:
        from django.contrib import admin
        from django_celery_beat.models import CrontabSchedule

        from . import metrics, request_context, schedules  # noqa: F401 - connect their Celery signal receivers

        # A crontab names itself, and every beat entry through it, in page titles, breadcrumbs, select boxes and
        # audit entries: in words ("Every day at 03:17 UTC"), not as "17 3 * * * (m/h/dM/MY/d) UTC".
        CrontabSchedule.__str__ = schedules.crontab_text

        admin.site.index_title = "Operations"
