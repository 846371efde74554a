from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "apps.compliance"
    verbose_name = "Compliance reports"
    default_auto_field = "django.db.models.BigAutoField"
