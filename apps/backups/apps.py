from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "apps.backups"
    verbose_name = "Backups"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.core.health import health_check_register

        from .health import BACKUPS_CHECK

        health_check_register(BACKUPS_CHECK)
