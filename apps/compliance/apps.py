from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "apps.compliance"
    verbose_name = "Compliance reports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.jobs.kinds import job_kind_register

        from .jobs import REPORT_KIND

        job_kind_register(REPORT_KIND)
