"""Scheduled audit work: hourly checkpoints, nightly verification with its gauge and maintenance run."""

import pytest

from apps.audit.models import AuditCheckpoint
from apps.audit.services import event_record
from apps.audit.tasks import audit_checkpoint, audit_verify
from apps.core.choices import MaintenanceStatus
from apps.core.models import MaintenanceRun
from tests.audit.test_audit_chain import _raw
from tests.core.test_metrics import _sample

pytestmark = pytest.mark.django_db


def test_checkpoint_task_signs_the_head_and_records_its_run():
    events = [event_record(action="test.event") for _ in range(3)]
    assert audit_checkpoint.apply().get() == f"Signed checkpoint at event #{events[-1].id} (3 events in all)."
    checkpoint = AuditCheckpoint.objects.get()
    assert (checkpoint.head_id, checkpoint.head_hash, checkpoint.event_count) == (events[-1].id, events[-1].hash, 3)
    assert MaintenanceRun.objects.get().status == MaintenanceStatus.SUCCEEDED


def test_verify_task_sets_gauge_and_fails_its_run_when_tampered(client):
    events = [event_record(action="test.event") for _ in range(3)]
    audit_verify.apply()
    assert _sample(client.get("/metrics").content.decode(), "audit_chain_valid") == 1

    _raw("UPDATE audit_auditevent SET action = 'forged' WHERE id = %s", [events[1].id])
    result = audit_verify.apply()
    assert result.failed()
    run = MaintenanceRun.objects.filter(task_name="maintenance.audit_verify").order_by("-id").first()
    assert run.status == MaintenanceStatus.FAILED
    assert f"Audit chain broken at event #{events[1].id}: content changed" in run.message
    assert _sample(client.get("/metrics").content.decode(), "audit_chain_valid") == 0
