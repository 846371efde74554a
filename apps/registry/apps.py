from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "apps.registry"
    verbose_name = "Model registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.core.consumers import job_snapshot_part_register

        from .selectors import inference_jobs_snapshot

        # Inference jobs share /ws/jobs/ with quantum jobs, which must not import this app.
        job_snapshot_part_register("inference", inference_jobs_snapshot)
