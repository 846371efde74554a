from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "apps.registry"
    verbose_name = "Model registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.jobs.kinds import job_kind_register

        from .inference import INFERENCE_JOBS

        # Inference and evaluation jobs run through the job layer and share /ws/jobs/ with the other kinds.
        job_kind_register(INFERENCE_JOBS)
