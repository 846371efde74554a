"""As deployed: two `runportal` web processes and a `celery worker` process on PostgreSQL and Redis. Maintenance mode
is turned on through one web process; the other refuses writes within seconds while reads go on; the worker runs no
new job; jobs queued before and submitted during the window all run once it is turned off, none lost."""

import asyncio
import re
import time

import pytest
import requests
import websockets
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from apps.accounts.tokens import token_create
from apps.jobs.choices import JobStatus
from apps.jobs.models import WorkerPresence
from apps.quantum.models import QuantumJob
from apps.quantum.services import JobSpec, job_submit
from apps.readonly.models import HeldJob
from apps.readonly.services import STATUS_CACHE_SECONDS
from tests.helpers import PortalProcess, WorkerProcess, child_database_url, wait_for
from tests.mfa import totp_code, totp_device_create
from tests.quantum_circuits import ghz_qasm2

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
JOBS = "/api/v1/quantum/jobs/"
MAINTENANCE = "/api/v1/core/maintenance/"


def _form_post(session: requests.Session, url: str, data: dict) -> requests.Response:
    page = session.get(url, timeout=15)
    csrf = CSRF_FIELD.search(page.text).group(1)
    return session.post(page.url, data={"csrfmiddlewaretoken": csrf, **data}, headers={"Referer": page.url}, timeout=15)


def _browser_session(portal: PortalProcess, user, password: str, key_hex: str) -> requests.Session:
    """Signed in with password and authenticator code, as a browser is: the sudo window is open."""
    browser = requests.Session()
    landed = _form_post(browser, f"{portal.url}/accounts/login/", {"username": user.username, "password": password})
    assert "/accounts/login/code/" in landed.url, landed.url
    _form_post(browser, landed.url, {"code": totp_code(key_hex)})
    browser.headers.update({"X-CSRFToken": browser.cookies["csrftoken"], "Referer": portal.url})
    return browser


async def _stream_opens(url: str, origin: str, token: str) -> bool:
    async with websockets.connect(url, origin=origin, subprotocols=["bearer", token], open_timeout=15):
        return True


def _submit_over_http(portal: PortalProcess, token: str, name: str) -> requests.Response:
    body = {"source": ghz_qasm2(3), "shots": 20, "name": name}
    return requests.post(portal.url + JOBS, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=15)


def test_maintenance_across_two_web_processes_and_a_worker_loses_nothing(
    transactional_db, roles, operator_user, admin_user, password, tmp_path
):
    device = totp_device_create(admin_user)
    # Hashed as the portal processes (not the fast test settings) check passwords.
    admin_user.password = PBKDF2PasswordHasher().encode(password, PBKDF2PasswordHasher().salt())
    admin_user.save(update_fields=["password"])
    token = token_create(owner=operator_user, name="script", scopes=["read", "write"], expires_in_days=1).secret
    shared = {"DATABASE_URL": child_database_url(), "REDIS_URL": settings.REDIS_URL, "SECRET_KEY": settings.SECRET_KEY}
    web_a = PortalProcess(tmp_path / "a", **shared)
    web_b = PortalProcess(tmp_path / "b", **shared)
    worker = None
    web_a.start()
    web_b.start()
    try:
        # Queued before the window, with no worker running yet.
        before = [_submit_over_http(web_a, token, f"before-{i}") for i in range(3)]
        assert [response.status_code for response in before] == [201] * 3, before[0].text

        # An administrator turns maintenance on through web process A (browser session, sudo window).
        admin = _browser_session(web_a, admin_user, password, device.key)
        switched = admin.post(
            web_a.url + MAINTENANCE, json={"enabled": True, "message": "Upgrading PostgreSQL."}, timeout=15
        )
        assert switched.status_code == 200, switched.text
        turned_on_at = time.monotonic()
        # Web process B refuses writes within a few seconds (each process reads the state at most every
        # STATUS_CACHE_SECONDS): 503, Retry-After, the message, in the API's shape.
        time.sleep(STATUS_CACHE_SECONDS + 0.2)
        refused = _submit_over_http(web_b, token, "refused")
        assert time.monotonic() - turned_on_at < 5
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "120"
        assert refused.json()["code"] == "maintenance"
        assert "Upgrading PostgreSQL." in refused.json()["detail"]
        # Reads go on, on both; readiness stays up and says so.
        for web in (web_a, web_b):
            listed = requests.get(web.url + JOBS, headers={"Authorization": f"Bearer {token}"}, timeout=15)
            assert listed.status_code == 200
            ready = requests.get(web.url + "/health/ready", timeout=15).json()
            assert ready["checks"]["maintenance"]["detail"].startswith("on (switch)")
            assert ready["status"] != "down", ready
            # Watching goes on: the jobs stream still opens.
            assert asyncio.run(_stream_opens(f"ws://127.0.0.1:{web.port}/ws/jobs/", web.url, token))

        # A worker starts; jobs are also submitted during the window from the command line's side (as beat or a
        # command would: the API refuses them).
        worker = WorkerProcess("maintenance", tmp_path)
        wait_for(lambda: WorkerPresence.objects.exists(), "the worker announcing itself")
        during = [job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(3), shots=20, name=f"during-{i}"))
                  for i in range(4)]  # fmt: skip
        wait_for(lambda: HeldJob.objects.count() == 7, "the worker holding all 7 jobs")
        time.sleep(3)  # a few more announcer rounds: still nothing runs
        jobs = list(QuantumJob.objects.order_by("id"))
        assert len(jobs) == 7
        assert {(job.status, job.attempts, job.started_at) for job in jobs} == {(JobStatus.QUEUED, 0, None)}

        # Turned off through web process B this time (the session is shared by every web process); the held jobs
        # go back on the queue.
        off = admin.post(web_b.url + MAINTENANCE, json={"enabled": False}, timeout=15)
        assert (off.status_code, off.json()["active"]) == (200, False), off.text
        [after] = wait_for(
            lambda: (response := _submit_over_http(web_a, token, "after")).status_code == 201 and [response],
            "web process A taking writes again",
            timeout=10,
        )
        expected = {job.pk for job in jobs} | {after.json()["id"]}
        wait_for(
            lambda: set(QuantumJob.objects.filter(status=JobStatus.COMPLETED).values_list("pk", flat=True)) == expected,
            "every job completing",
            timeout=90,
        )
        assert set(QuantumJob.objects.values_list("attempts", flat=True)) == {1}
        assert not HeldJob.objects.exists()
        assert {job.name for job in QuantumJob.objects.all()} == {
            *(f"before-{i}" for i in range(3)),
            *(job.name for job in during),
            "after",
        }
    finally:
        if worker is not None:
            worker.stop()
        web_a.kill()
        web_b.kill()
