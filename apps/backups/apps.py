from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "apps.backups"
    verbose_name = "Backups"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.urls import reverse

        from apps.core.health import health_check_register
        from apps.jobs.kinds import ADMINISTRATORS, JobKind, job_kind_register

        from . import jobs, tasks
        from .health import BACKUPS_CHECK
        from .models import BackupJob

        health_check_register(BACKUPS_CHECK)
        job_kind_register(
            JobKind(
                name=jobs.KIND,
                model=BackupJob,
                audit_prefix="backup.job",
                page=lambda job: reverse("backups_page:job", args=[job.pk]),
                send=tasks.backup_jobs_send,
                visible_to=jobs.backup_jobs_visible_to,
                audience=ADMINISTRATORS,
                details=jobs.backup_job_details,
                changes=jobs.backup_job_changes,
                # Backups are housekeeping on the maintenance queue: they go on during maintenance mode.
                waits_for_maintenance=False,
            )
        )
