from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("compliance", "0004_report_progress_carry")]

    operations = [migrations.RemoveField(model_name="report", name="progress")]
