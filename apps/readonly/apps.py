from django.apps import AppConfig


class ReadonlyConfig(AppConfig):
    """Maintenance mode: the portal read-only for a while (not the scheduled housekeeping, apps/core/maintenance.py)."""

    name = "apps.readonly"
    label = "readonly"
    verbose_name = "Maintenance mode"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.core.health import health_check_register

        from .health import MAINTENANCE_CHECK

        health_check_register(MAINTENANCE_CHECK)
