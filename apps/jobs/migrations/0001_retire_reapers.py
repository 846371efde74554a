"""The two per-kind reapers are gone: every worker now sweeps for jobs whose worker stopped heartbeating."""

from django.db import migrations

RETIRED_TASKS = ("quantum.reap_stale", "registry.reap_stale")


def retire(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task__in=RETIRED_TASKS).delete()


class Migration(migrations.Migration):
    dependencies = [("django_celery_beat", "__latest__")]

    operations = [migrations.RunPython(retire, migrations.RunPython.noop)]
