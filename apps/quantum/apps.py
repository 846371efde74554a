from django.apps import AppConfig


class QuantumConfig(AppConfig):
    name = "apps.quantum"
    verbose_name = "Quantum jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.urls import reverse

        from apps.jobs.kinds import JobKind, job_kind_register

        from . import selectors, services
        from .models import QuantumJob

        job_kind_register(
            JobKind(
                name="quantum",
                model=QuantumJob,
                audit_prefix="quantum.job",
                page=lambda job: reverse("dashboard:job", args=[job.pk]),
                send=services.jobs_send,
                send_waiting=services.jobs_send_waiting,
                visible_to=selectors.jobs_streamed_to,
                changes=services.job_changes,
                on_finished=services.job_counted,
                queue_positions=selectors.queue_positions,
                on_published=services.queue_length_record,
            )
        )
