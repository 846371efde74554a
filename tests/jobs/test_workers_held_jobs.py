"""While maintenance mode holds queued jobs, the broker no longer has their messages (a real worker took them), so
the workers view shows them apart: per queue and in total per kind, on the page and in the API, with the line that
they start when maintenance ends; a held job cancelled meanwhile no longer counts, and none show once they ran."""

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.tokens import token_create
from apps.jobs.choices import JobStatus
from apps.quantum.models import QuantumJob
from apps.quantum.services import JobSpec, job_submit
from apps.readonly.models import HeldJob
from apps.readonly.services import maintenance_mode_disable, maintenance_mode_enable, maintenance_mode_forget_cached
from tests.helpers import job_wait, wait_for
from tests.mfa import otp_force_login, totp_device_create
from tests.quantum_circuits import ghz_qasm2

pytestmark = pytest.mark.timeout(180)
WORKERS_URL = "/api/v1/core/workers/"


def test_jobs_held_during_maintenance_show_per_queue_and_kind_on_the_page_and_in_the_api(
    celery_worker, api_client, admin_user, operator_user
):
    maintenance_mode_forget_cached()
    totp_device_create(admin_user)  # staff need an authenticator before a token is accepted
    token = token_create(owner=admin_user, name="ops", scopes=["read"], expires_in_days=1).secret
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    maintenance_mode_enable(message="Upgrade.", via="test")
    jobs = [
        job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(3), shots=20, name=f"h{i}")) for i in range(3)
    ]
    wait_for(lambda: HeldJob.objects.filter(kind="quantum").count() == 3, "the worker holding the 3 jobs")
    # A held job cancelled meanwhile will not start: it is not counted.
    QuantumJob.objects.filter(pk=jobs[2].pk).update(status=JobStatus.CANCELLED)
    queue = QuantumJob.objects.get(pk=jobs[0].pk).queue

    body = api_client.get(WORKERS_URL, **headers).json()

    by_name = {entry["name"]: entry for entry in body["queues"]}
    assert by_name[queue]["depth"] == 0  # the broker is empty: the worker took the messages
    assert by_name[queue]["held"] == 2
    assert sum(entry["held"] for entry in body["queues"]) == 2
    assert body["held_during_maintenance"] == {"total": 2, "per_queue": {queue: 2}, "per_kind": {"quantum": 2}}
    queues_only = api_client.get(WORKERS_URL + "queues/", **headers).json()
    assert queues_only["held_during_maintenance"]["total"] == 2

    client = Client()
    otp_force_login(client, admin_user)
    page = client.get(reverse("workers_page:index")).content.decode()
    assert "2 jobs held while maintenance mode is on (quantum 2)" in page
    assert "They start when maintenance ends." in page
    assert "<th>Held for maintenance</th>" in page

    maintenance_mode_disable(via="test")
    for job in jobs[:2]:
        job_wait(job, [JobStatus.COMPLETED], timeout=90)

    body = api_client.get(WORKERS_URL, **headers).json()
    assert body["held_during_maintenance"] == {"total": 0, "per_queue": {}, "per_kind": {}}
    assert all(entry["held"] == 0 for entry in body["queues"])
    page = client.get(reverse("workers_page:index")).content.decode()
    assert 'id="held-jobs"' not in page
