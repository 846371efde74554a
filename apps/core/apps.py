from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Portal core"

    def ready(self) -> None:
        from django.contrib import admin

        from . import metrics, request_context  # noqa: F401 - connect their Celery signal receivers

        admin.site.index_title = "Operations"
