from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "apps.backups"
    verbose_name = "Backups"
    default_auto_field = "django.db.models.BigAutoField"
