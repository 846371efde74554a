from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "apps.jobs"
    verbose_name = "Jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import sweeper

        # Every worker process sweeps for jobs whose worker stopped heartbeating.
        sweeper.connect()
