"""A task message the broker delivers again (RabbitMQ does as soon as a worker's connection closes) runs its jobs
again, and the audit trail records each such requeue once, as the sweeper records its own."""

import pytest

from apps.audit.models import AuditEvent
from apps.jobs.choices import JobStatus
from apps.jobs.kinds import job_kind
from apps.jobs.lifecycle import jobs_claim, jobs_requeue_lost
from apps.quantum.services import JobSpec, job_submit
from tests.quantum_circuits import ghz_qasm2

BROKER_REDELIVERY = "the broker redelivered its message after its worker was lost"

pytestmark = pytest.mark.django_db


def _requeues(job) -> list[tuple[str, dict]]:
    events = AuditEvent.objects.filter(action="quantum.job.requeued", object_id=str(job.pk)).order_by("id")
    return [(event.outcome, event.changes) for event in events]


def test_each_redelivery_of_a_message_is_audited_once_as_a_requeue(operator_user, settings):
    settings.QUANTUM_MAX_ATTEMPTS = 3
    job = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(3), shots=10))
    kind = job_kind("quantum")

    assert [claimed.pk for claimed in jobs_claim(kind, [job.pk], task_id="message-1", worker="first")] == [job.pk]
    assert _requeues(job) == []

    # Its worker died: the broker hands the same message to another worker, then to a third.
    jobs_claim(kind, [job.pk], task_id="message-1", worker="second")
    jobs_claim(kind, [job.pk], task_id="message-1", worker="third")
    job.refresh_from_db()

    assert (job.status, job.attempts, job.worker) == (JobStatus.RUNNING, 3, "third")
    assert _requeues(job) == [
        ("failure", {"attempts": 1, "reason": BROKER_REDELIVERY}),
        ("failure", {"attempts": 2, "reason": BROKER_REDELIVERY}),
    ]
    # The run the broker brought back heartbeats: no sweeper requeues it a second time.
    assert jobs_requeue_lost() == {}
    assert len(_requeues(job)) == 2


def test_a_message_delivered_after_the_sweeper_requeued_its_job_is_not_audited_again(operator_user, settings):
    settings.JOBS_HEARTBEAT_TIMEOUT = 0
    job = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(3), shots=10))
    kind = job_kind("quantum")
    jobs_claim(kind, [job.pk], task_id="message-1", worker="first")

    assert jobs_requeue_lost() == {"quantum": 1}
    # The dead worker's message comes back late (Redis, after its visibility timeout): it finds the job queued.
    jobs_claim(kind, [job.pk], task_id="message-1", worker="second")

    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.RUNNING, 2)
    assert _requeues(job) == [("failure", {"attempts": 1, "reason": "its worker stopped heartbeating"})]


def test_a_message_redelivered_once_its_attempts_are_used_fails_the_job_without_a_requeue(operator_user, settings):
    settings.QUANTUM_MAX_ATTEMPTS = 1
    job = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(3), shots=10))
    kind = job_kind("quantum")
    jobs_claim(kind, [job.pk], task_id="message-1", worker="first")

    assert jobs_claim(kind, [job.pk], task_id="message-1", worker="second") == []

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert _requeues(job) == []
