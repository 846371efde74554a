"""Inference jobs become a kind of the job layer (apps.jobs): the rows counts become its progress, and the
layer's fields are filled in for the jobs already stored (queued when created, the attempts now allowed)."""

from django.conf import settings
from django.db import migrations, models
from django.db.models import F


def fill_in(apps, schema_editor):
    jobs = apps.get_model("registry", "InferenceJob").objects
    jobs.update(queued_at=F("created_at"), max_attempts=settings.REGISTRY_MAX_ATTEMPTS)


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]

    operations = [
        migrations.RenameField(model_name="inferencejob", old_name="rows_done", new_name="progress_done"),
        migrations.RenameField(model_name="inferencejob", old_name="rows_total", new_name="progress_total"),
        migrations.AlterField(
            model_name="inferencejob",
            name="progress_done",
            field=models.BigIntegerField(default=0, help_text="Units of work done (rows, bytes, percent…)."),
        ),
        migrations.AlterField(
            model_name="inferencejob",
            name="progress_total",
            field=models.BigIntegerField(blank=True, help_text="Units of work in all, when known.", null=True),
        ),
        migrations.AddField(
            model_name="inferencejob",
            name="priority",
            field=models.SmallIntegerField(default=0, help_text="Higher runs first (-10 … 10)."),
        ),
        migrations.AddField(
            model_name="inferencejob",
            name="queued_at",
            field=models.DateTimeField(blank=True, help_text="When it was last put in the queue.", null=True),
        ),
        migrations.AddField(
            model_name="inferencejob",
            name="duration_seconds",
            field=models.FloatField(blank=True, help_text="Run time on the worker.", null=True),
        ),
        migrations.AddField(
            model_name="inferencejob",
            name="max_attempts",
            field=models.PositiveSmallIntegerField(default=3, help_text="Runs allowed before it fails for good."),
        ),
        migrations.AddField(
            model_name="inferencejob",
            name="heartbeat_at",
            field=models.DateTimeField(
                blank=True, help_text="Last sign of life from its worker while running.", null=True
            ),
        ),
        migrations.AlterField(
            model_name="inferencejob",
            name="attempts",
            field=models.PositiveSmallIntegerField(default=0, help_text="Runs started (a lost worker's run counts)."),
        ),
        migrations.AlterField(
            model_name="inferencejob",
            name="celery_task_id",
            field=models.CharField(blank=True, help_text="The task message that holds the job.", max_length=64),
        ),
        migrations.RunPython(fill_in, migrations.RunPython.noop),
    ]
