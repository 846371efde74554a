"""The percent of the old progress column into progress_done of progress_total = 100; a report being generated
counts as started once, so the sweeper requeues it when no worker heartbeats it."""

from django.db import migrations
from django.db.models import F


def progress_carry(apps, schema_editor):
    Report = apps.get_model("compliance", "Report")
    Report.objects.update(progress_done=F("progress"), progress_total=100, queued_at=F("created_at"))
    Report.objects.filter(status="running").update(started_at=F("updated_at"), attempts=1)


def progress_restore(apps, schema_editor):
    Report = apps.get_model("compliance", "Report")
    Report.objects.update(progress=F("progress_done"))
    # The old lifecycle knew neither state: a cancel ends like a failure.
    Report.objects.filter(status__in=("cancelling", "cancelled")).update(status="failed")


class Migration(migrations.Migration):
    dependencies = [("compliance", "0003_report_job")]

    operations = [migrations.RunPython(progress_carry, progress_restore)]
