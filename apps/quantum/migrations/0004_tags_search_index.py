"""A GIN index on the jobs' tags for the list's ``tag`` filter: a rare tag is otherwise found by reading every job.

PostgreSQL only (jsonb containment, which the filter uses there); the embedded SQLite database has neither, so the
index is created by hand here rather than declared on the model.
"""

from django.db import migrations

INDEX = "quantum_job_tags_gin"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON quantum_quantumjob USING gin (tags jsonb_path_ops)"
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("quantum", "0003_list_indexes")]

    operations = [migrations.RunPython(create_index, drop_index, elidable=False)]
