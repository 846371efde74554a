"""Quantum jobs on the job layer: heartbeat, queue time, progress and per-job attempt limit."""

from django.db import migrations, models
from django.db.models import F


def queued_at_from_created_at(apps, schema_editor):
    apps.get_model("quantum", "QuantumJob").objects.update(queued_at=F("created_at"))


class Migration(migrations.Migration):
    dependencies = [("quantum", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="quantumjob",
            name="queued_at",
            field=models.DateTimeField(blank=True, help_text="When it was last put in the queue.", null=True),
        ),
        migrations.RunPython(queued_at_from_created_at, migrations.RunPython.noop),
        migrations.AddField(
            model_name="quantumjob",
            name="max_attempts",
            field=models.PositiveSmallIntegerField(default=3, help_text="Runs allowed before it fails for good."),
        ),
        migrations.AddField(
            model_name="quantumjob",
            name="heartbeat_at",
            field=models.DateTimeField(
                blank=True, help_text="Last sign of life from its worker while running.", null=True
            ),
        ),
        migrations.AddField(
            model_name="quantumjob",
            name="progress_done",
            field=models.BigIntegerField(default=0, help_text="Units of work done (rows, bytes, percent…)."),
        ),
        migrations.AddField(
            model_name="quantumjob",
            name="progress_total",
            field=models.BigIntegerField(blank=True, help_text="Units of work in all, when known.", null=True),
        ),
        migrations.AlterField(
            model_name="quantumjob",
            name="duration_seconds",
            field=models.FloatField(blank=True, help_text="Run time on the worker.", null=True),
        ),
        migrations.AlterField(
            model_name="quantumjob",
            name="attempts",
            field=models.PositiveSmallIntegerField(default=0, help_text="Runs started (a lost worker's run counts)."),
        ),
    ]
