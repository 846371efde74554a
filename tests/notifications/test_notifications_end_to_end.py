"""The issue's "done when": a backup failure, a broken chain and a finished job each reach email, a webhook and the
SIEM, through a real SMTP server, a real HTTP receiver and a real syslog listener, with a real Celery worker."""

import json

import pytest
from django.db import transaction

from apps.audit.forwarding import audit_forward, sink_save
from apps.audit.models import AuditEvent, AuditSink
from apps.audit.services import chain_check, event_record
from apps.backups.choices import BackupStatus
from apps.backups.services import backup_failed
from apps.jobs.choices import JobStatus
from apps.notifications.preferences import preferences_save
from apps.notifications.webhooks import webhook_endpoint_create
from apps.quantum.services import JobSpec, job_submit
from tests.audit.collectors import SyslogListener
from tests.audit.test_audit_chain import _raw
from tests.backups.conftest import backup_row
from tests.helpers import job_wait
from tests.mail_server import text_body
from tests.quantum_circuits import ghz_qasm2

from .webhook_receiver import readme_verification_snippet

EVENTS = ["backup.failed", "audit.chain_invalid", "job.completed"]


@pytest.fixture
def siem():
    listener = SyslogListener().start()
    sink_save(sink=AuditSink(name="SIEM", url=f"syslog+tcp://127.0.0.1:{listener.port}"))
    yield listener
    listener.stop()


def test_backup_failure_broken_chain_and_finished_job_reach_email_webhook_and_siem(
    celery_worker, smtp_server, webhook_receiver, siem, admin_user, operator_user
):
    _, secret = webhook_endpoint_create(
        name="Incident pager", url=webhook_receiver.url, events=EVENTS, owner=admin_user
    )
    preferences_save(user=operator_user, choices={"job.completed": True})

    backup = backup_row(status=BackupStatus.RUNNING)
    backup_failed(backup, "pg_dump failed (exit 1): connection refused")
    tampered = event_record(action="test.event", object_repr="the original")
    with transaction.atomic():  # the replication role that lets the tamperer past the trigger is per transaction
        _raw("UPDATE audit_auditevent SET object_repr = 'rewritten' WHERE id = %s", [tampered.id])
    assert not chain_check().ok
    job = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(3), shots=100, name="ghz three"))
    job_wait(job, [JobStatus.COMPLETED, JobStatus.FAILED])
    assert job.status == JobStatus.COMPLETED, job.error

    # Email: administrators are told of the backup and the chain by default; the operator asked about their jobs.
    to_admin = smtp_server.wait_for(2, to=admin_user.email)
    assert sorted(message["Subject"] for message in to_admin) == [
        f"[Opsdeck] Audit trail broken: Audit chain broken at event #{tampered.id}: content changed: event "
        f"#{tampered.id} does not match its hash",
        f"[Opsdeck] Backup failed: Backup #{backup.pk} failed: pg_dump failed (exit 1): connection refused",
    ]
    (to_operator,) = smtp_server.wait_for(1, to=operator_user.email)
    assert to_operator["Subject"] == f"[Opsdeck] Job completed: Job #{job.pk} ghz three completed"
    assert f"/dashboard/jobs/{job.pk}/" in text_body(to_operator)
    assert not smtp_server.to(operator_user.email)[1:], "the operator may not see backups or the audit trail"

    # Webhook: one signed delivery per event, each verified with the README's own snippet.
    requests = webhook_receiver.wait_for(3)
    signature_valid = readme_verification_snippet()["opsdeck_signature_valid"]
    for request in requests:
        assert signature_valid(secret, request.body, request.headers["Opsdeck-Signature"])
    payloads = {json.loads(request.body)["event"]: json.loads(request.body) for request in requests}
    assert sorted(payloads) == sorted(EVENTS)
    assert payloads["backup.failed"]["data"]["backup_id"] == backup.pk
    assert payloads["audit.chain_invalid"]["data"]["bad_event_id"] == tampered.id
    assert payloads["job.completed"]["data"] == {
        "kind": "quantum",
        "job_id": job.pk,
        "name": f"Job #{job.pk} ghz three",
        "status": "completed",
        "path": f"/dashboard/jobs/{job.pk}/",
    }

    # SIEM: the whole trail, in order, with each event's hash, the three announcements among it.
    audit_forward()
    forwarded = siem.documents
    assert [(document["id"], document["hash"]) for document in forwarded] == list(
        AuditEvent.objects.order_by("id").values_list("id", "hash")
    )
    actions = [document["action"] for document in forwarded]
    for event in EVENTS:
        assert f"notification.{event}" in actions
    assert "quantum.job.completed" in actions
