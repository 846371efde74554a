"""A report is a job (apps.jobs): requested_by becomes owner and the job's fields are added (the data follows in
0004, the old progress column goes in 0005: each in its own transaction, as PostgreSQL will not alter a table
with pending constraint checks from rows updated in the same transaction)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0002_report_signature_help_text"),
    ]

    operations = [
        migrations.RenameField(
            model_name="report",
            old_name="requested_by",
            new_name="owner",
        ),
        migrations.AddField(
            model_name="report",
            name="attempts",
            field=models.PositiveSmallIntegerField(default=0, help_text="Runs started (a lost worker's run counts)."),
        ),
        migrations.AddField(
            model_name="report",
            name="celery_task_id",
            field=models.CharField(blank=True, help_text="The task message that holds the job.", max_length=64),
        ),
        migrations.AddField(
            model_name="report",
            name="duration_seconds",
            field=models.FloatField(blank=True, help_text="Run time on the worker.", null=True),
        ),
        migrations.AddField(
            model_name="report",
            name="heartbeat_at",
            field=models.DateTimeField(
                blank=True, help_text="Last sign of life from its worker while running.", null=True
            ),
        ),
        migrations.AddField(
            model_name="report",
            name="max_attempts",
            field=models.PositiveSmallIntegerField(default=3, help_text="Runs allowed before it fails for good."),
        ),
        migrations.AddField(
            model_name="report",
            name="priority",
            field=models.SmallIntegerField(default=0, help_text="Higher runs first (-10 … 10)."),
        ),
        migrations.AddField(
            model_name="report",
            name="progress_done",
            field=models.BigIntegerField(default=0, help_text="Units of work done (rows, bytes, percent…)."),
        ),
        migrations.AddField(
            model_name="report",
            name="progress_total",
            field=models.BigIntegerField(blank=True, help_text="Units of work in all, when known.", null=True),
        ),
        migrations.AddField(
            model_name="report",
            name="queued_at",
            field=models.DateTimeField(blank=True, help_text="When it was last put in the queue.", null=True),
        ),
        migrations.AddField(
            model_name="report",
            name="started_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="report",
            name="worker",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AlterField(
            model_name="report",
            name="status",
            field=models.CharField(
                choices=[
                    ("queued", "Queued"),
                    ("running", "Running"),
                    ("completed", "Completed"),
                    ("failed", "Failed"),
                    ("cancelling", "Cancelling"),
                    ("cancelled", "Cancelled"),
                ],
                default="queued",
                max_length=12,
            ),
        ),
    ]
