"""`Client.maintenance()` / `opsdeck maintenance status` and `Client.workers()` / `opsdeck workers list` against a
running portal (`runportal`) on PostgreSQL: the state of maintenance mode with its end and planned windows, the
workers and queues with the jobs held during maintenance, `--json`, and the one-line 403 for a non-staff token."""

import json
import os
import subprocess
import sys
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from apps.accounts.tokens import token_create
from apps.quantum.services import JobSpec, job_submit
from apps.readonly.models import HeldJob
from apps.readonly.services import maintenance_mode_enable, maintenance_window_schedule
from tests.helpers import PROJECT_DIR, PortalProcess, child_database_url
from tests.mfa import totp_device_create
from tests.quantum_circuits import ghz_qasm2
from tests.workers import worker_announced

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
OPSDECK = str(Path(sys.executable).parent / "opsdeck")
CLIENT_SOURCE = str(PROJECT_DIR / "client" / "src")  # the client of this checkout, whatever pip installed


@pytest.fixture
def portal(transactional_db, tmp_path, settings):
    web = PortalProcess(
        tmp_path / "web",
        DJANGO_SETTINGS_MODULE="project.settings.test",
        TEST_DATABASE_URL=child_database_url(),
        TEST_REDIS_URL=settings.REDIS_URL,
        SECRET_KEY=settings.SECRET_KEY,
        AUDIT_SIGNING_KEY=settings.AUDIT_SIGNING_KEY,
    )
    try:
        web.start()
        yield web
    finally:
        web.kill()


def _token(user) -> str:
    if user.is_staff:
        totp_device_create(user)  # staff need an authenticator before a token is accepted
    return token_create(owner=user, name="script", scopes=["read"], expires_in_days=1).secret


def opsdeck(portal, token: str, *args: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "OPSDECK_URL": portal.url, "OPSDECK_TOKEN": token, "PYTHONPATH": CLIENT_SOURCE}
    return subprocess.run([OPSDECK, *args], env=environment, capture_output=True, text=True, timeout=60, check=False)


def test_maintenance_status_says_off_then_on_until_its_end_with_the_planned_window(portal, viewer_user):
    token = _token(viewer_user)

    off = opsdeck(portal, token, "maintenance", "status")
    assert off.returncode == 0, off.stderr
    assert off.stdout == "maintenance mode is off\n"

    until = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    maintenance_mode_enable(message="Upgrading PostgreSQL.", until=until, via="test")
    starts = (timezone.now() + timedelta(hours=5)).replace(microsecond=0)
    maintenance_window_schedule(starts_at=starts, ends_at=starts + timedelta(hours=1), message="Switch swap.")
    iso = until.astimezone(UTC).isoformat().replace("+00:00", "Z")

    on = opsdeck(portal, token, "maintenance", "status")
    assert on.returncode == 0, on.stderr
    lines = on.stdout.splitlines()
    assert lines[0] == f"maintenance mode is on (switch) until {iso}: Upgrading PostgreSQL."
    assert lines[1].startswith("planned: ")
    assert lines[1].endswith(": Switch swap.")

    document = json.loads(opsdeck(portal, token, "--json", "maintenance", "status").stdout)
    assert (document["active"], document["until"], document["message"]) == (True, iso, "Upgrading PostgreSQL.")
    assert len(document["upcoming"]) == 1


def test_workers_list_shows_queues_held_jobs_and_workers_for_staff_and_a_403_line_for_others(
    portal, admin_user, operator_user
):
    worker_announced("celery@host1", queues=("quantum", "default"))
    maintenance_mode_enable(via="test")
    # A quantum job a worker took off the broker during maintenance (apps.jobs.lifecycle.jobs_claim holds it).
    job = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(3), shots=10, name="held"))
    HeldJob.objects.create(kind="quantum", job_id=job.pk)
    token = _token(admin_user)

    listed = opsdeck(portal, token, "workers", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    queue_line = next(line for line in lines if line.startswith(f"queue {job.queue}\t"))
    assert "\theld 1\t" in queue_line
    assert "1 jobs held during maintenance; they start when it ends" in lines
    worker_line = next(line for line in lines if line.startswith("worker celery@host1\t"))
    assert "\tactive\tqueues quantum,default\trunning 0\t" in worker_line

    document = json.loads(opsdeck(portal, token, "--json", "workers", "list", "--minutes", "30").stdout)
    assert document["minutes"] == 30
    assert document["held_during_maintenance"]["per_kind"] == {"quantum": 1}
    assert [worker["hostname"] for worker in document["workers"]] == ["celery@host1"]

    refused = opsdeck(portal, _token(operator_user), "workers", "list")
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr == (
        "opsdeck: error: The workers and queues view is for staff members. (HTTP 403 permission_denied)\n"
    )
    bad = opsdeck(portal, token, "workers", "list", "--minutes", "0")
    assert bad.returncode == 2
    assert "0 is not in the range 1<=x<=1440" in bad.stderr
