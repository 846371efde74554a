"""Columns the chain hash covers as text, so PostgreSQL can recompute hashes during verify."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_search_indexes")]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="changes_text",
            field=models.TextField(default="{}", editable=False),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="ip",
            field=models.CharField(blank=True, default="", max_length=45, verbose_name="client IP"),
            preserve_default=False,
        ),
    ]
