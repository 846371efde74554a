"""The job layer's migrations carry every stored job, report and backup over, whatever its state."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.backups.models import Backup
from apps.compliance.models import Report
from apps.jobs.choices import JobStatus
from apps.quantum.models import QuantumJob
from apps.registry.models import InferenceJob
from tests.quantum_circuits import ghz_qasm2

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE_THE_JOB_LAYER = [
    ("quantum", "0001_initial"),
    ("registry", "0001_initial"),
    ("compliance", "0002_report_signature_help_text"),
    ("backups", "0001_initial"),
]
JOB_STATUSES = ["queued", "running", "completed", "failed", "cancelling", "cancelled"]
REPORT_STATUSES = {"queued": 0, "running": 40, "completed": 100, "failed": 15}
BACKUP_STATUSES = ["running", "completed", "failed", "verified", "verify_failed", "pruned"]


def _old_rows(apps) -> dict:
    """Rows of every state, written through the models as they were before the job layer."""
    owner = apps.get_model("accounts", "User").objects.create(username="migrated-owner", password="!")
    created = timezone.now() - timedelta(days=1)
    for status in JOB_STATUSES:
        apps.get_model("quantum", "QuantumJob").objects.create(
            owner=owner, name=status, source=ghz_qasm2(2), qasm_version=2, num_qubits=2, num_clbits=2, depth=3,
            shots=10, status=status, attempts=1 if status != "queued" else 0, worker="w", celery_task_id=f"t-{status}",
        )  # fmt: skip
    model = apps.get_model("registry", "RegisteredModel").objects.create(
        name="migrated", task="text-classification", owner=owner
    )
    version = apps.get_model("registry", "ModelVersion").objects.create(
        model=model, version=1, artifact="registry/artifacts/x.zip", sha256="0" * 64, size_bytes=1, created_by=owner
    )
    for status in JOB_STATUSES:
        apps.get_model("registry", "InferenceJob").objects.create(
            owner=owner, version=version, kind="batch", name=status, input_file="registry/inputs/x.csv",
            input_format="csv", rows_total=10, rows_done=7, status=status,
        )  # fmt: skip
    for status, percent in REPORT_STATUSES.items():
        apps.get_model("compliance", "Report").objects.create(
            kind="access_review", format="csv", period_start=created, period_end=timezone.now(), status=status,
            requested_by=owner, progress=percent, error="broke" if status == "failed" else "",
        )  # fmt: skip
    for status in BACKUP_STATUSES:
        apps.get_model("backups", "Backup").objects.create(
            status=status, compression="zstd", key_id="k", storage_name="backups", database_engine="postgresql",
            trigger="schedule", path=f"{status}.backup",
        )  # fmt: skip
    return {"owner": owner.pk}


def test_jobs_reports_and_backups_of_every_state_survive_the_migration():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_THE_JOB_LAYER)
    old = _old_rows(executor.loader.project_state(BEFORE_THE_JOB_LAYER).apps)

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    quantum = {job.name: job for job in QuantumJob.objects.all()}
    assert {name: job.status for name, job in quantum.items()} == {status: status for status in JOB_STATUSES}
    assert all(job.owner_id == old["owner"] and job.queued_at == job.created_at for job in quantum.values())
    assert quantum["running"].celery_task_id == "t-running"
    assert quantum["running"].attempts == 1

    inference = {job.name: job for job in InferenceJob.objects.all()}
    assert {name: job.status for name, job in inference.items()} == {status: status for status in JOB_STATUSES}
    assert {(job.progress_done, job.progress_total) for job in inference.values()} == {(7, 10)}

    reports = {report.status: report for report in Report.objects.all()}
    assert set(reports) == set(REPORT_STATUSES)
    assert {status: report.progress_done for status, report in reports.items()} == REPORT_STATUSES
    assert {report.progress_total for report in reports.values()} == {100}
    assert {report.owner_id for report in reports.values()} == {old["owner"]}
    assert reports[JobStatus.FAILED].error == "broke"

    backups = {backup.path: backup.status for backup in Backup.objects.all()}
    assert backups == {f"{status}.backup": status for status in BACKUP_STATUSES}
