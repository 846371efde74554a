from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "apps.jobs"
    verbose_name = "Jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.readonly.services import maintenance_ended_hook_register

        from .lifecycle import jobs_release_held

        # Jobs held during maintenance mode go back on the queues as soon as someone turns it off.
        maintenance_ended_hook_register(jobs_release_held)
