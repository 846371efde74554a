"""`runportal` end to end: the embedded portal, its in-process worker and beat, and clean stops."""

import re
import signal
import time
import urllib.request

import pytest

from tests.helpers import PortalProcess, free_port
from tests.mfa import browser_admin_sign_in

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
ADMIN = {"OPSDECK_ADMIN_USERNAME": "e2e-admin", "OPSDECK_ADMIN_PASSWORD": "an-e2e-admin-passphrase"}
ONE_OFF_BEAT_ENTRY = """
from django_celery_beat.models import IntervalSchedule, PeriodicTask
every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
PeriodicTask.objects.create(
    name="e2e one-off", task="maintenance.session_clear_expired", interval=every_second, one_off=True
)
"""
# The admin needs an OTP-verified session: the administrator gets an authenticator with a known key.
ADMIN_TOTP_KEY = "3132333435363738393031323334353637383930"
ADMIN_AUTHENTICATOR = f"""
from django_otp.plugins.otp_totp.models import TOTPDevice
from apps.accounts.models import User
TOTPDevice.objects.create(user=User.objects.get(username="{ADMIN["OPSDECK_ADMIN_USERNAME"]}"), name="e2e",
                          key="{ADMIN_TOTP_KEY}", confirmed=True)
"""


@pytest.fixture
def embedded_portal(tmp_path):
    portal = PortalProcess(tmp_path, **ADMIN)
    portal.manage("migrate", "--noinput")
    portal.manage("setup_periodic_tasks")
    assert "Created admin account 'e2e-admin'" in portal.manage("ensure_admin")
    portal.manage("shell", "-c", ONE_OFF_BEAT_ENTRY)
    portal.manage("shell", "-c", ADMIN_AUTHENTICATOR)
    portal.start()
    yield portal
    portal.kill()


def _maintenance_runs(page, portal) -> list[dict]:
    response = page.request.get(portal.url + "/api/v1/core/maintenance-runs/")
    assert response.status == 200, response.text()
    return response.json()["results"]


def _wait_for_runs(page, portal, count: int, task_name: str, timeout: float = 30) -> list[dict]:
    """The finished runs of ``task_name`` once there are ``count`` (other entries of the schedule, such as the
    five-minutely ones, may come due during the test and are not counted)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [
            run
            for run in _maintenance_runs(page, portal)
            if run["status"] != "running" and run["task_name"] == task_name
        ]
        if len(runs) >= count:
            return runs
        time.sleep(0.3)
    raise AssertionError(f"fewer than {count} finished maintenance runs after {timeout} s")


@pytest.mark.browser
def test_embedded_portal_serves_admin_and_runs_beat_and_worker_in_process(embedded_portal, chromium):
    portal = embedded_portal
    status, report = portal.get_json("/health/ready")
    assert status == 200, report
    assert report["checks"]["broker"]["detail"] == "embedded in-process broker"
    assert report["checks"]["database"]["detail"] == "sqlite answers"

    page = chromium.new_page()
    page.goto(portal.url + "/admin/login/")
    assert "Opsdeck" in page.title()
    browser_admin_sign_in(
        page,
        portal.url,
        username=ADMIN["OPSDECK_ADMIN_USERNAME"],
        password=ADMIN["OPSDECK_ADMIN_PASSWORD"],
        key_hex=ADMIN_TOTP_KEY,
    )
    assert page.locator("#site-name").inner_text() == "Opsdeck"

    # Beat (database scheduler) sent the one-off entry; the embedded worker ran it.
    beat_runs = _wait_for_runs(page, portal, 1, "maintenance.session_clear_expired")
    assert beat_runs[0]["task_name"] == "maintenance.session_clear_expired"
    assert beat_runs[0]["status"] == "succeeded"
    assert beat_runs[0]["worker"]

    # An administrator runs the nightly task now from the admin; the worker records it.
    page.goto(portal.url + "/admin/django_celery_beat/periodictask/")
    page.locator("tr", has_text="Clear expired sessions").locator("input.action-select").check()
    page.select_option("select[name=action]", "run_tasks")
    page.click("button[name=index]")
    assert "1 task was successfully run" in page.locator("#main").inner_text()
    runs = _wait_for_runs(page, portal, 2, "maintenance.session_clear_expired")
    assert [run["status"] for run in runs] == ["succeeded", "succeeded"]
    assert runs[0]["message"] == "Deleted 0 expired sessions."
    # The run itself wrote the entry's last run (beat would only have written it at its next sync, minutes on).
    page.goto(portal.url + "/admin/django_celery_beat/periodictask/")
    row = page.locator("tr", has_text="Clear expired sessions")
    assert row.locator("td.field-schedule").inner_text() == "Every day at 03:17 UTC"
    assert re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC", row.locator("td.field-last_run").inner_text())
    page.close()

    code, output = portal.stop(signal.SIGINT)
    assert code == 0, output
    # The trail the portal wrote to SQLite (login, schedule changes) verifies.
    assert "Verified" in portal.manage("audit", "verify")
    assert "embedded worker and beat" in output
    assert "Opsdeck portal stopped." in output
    assert "Traceback" not in output


def test_web_only_portal_is_down_with_reason_when_redis_is_unreachable(tmp_path):
    closed_port = free_port()
    portal = PortalProcess(tmp_path, REDIS_URL=f"redis://127.0.0.1:{closed_port}/0")
    portal.manage("migrate", "--noinput")
    portal.start()
    try:
        status, report = portal.get_json("/health/ready")
        assert status == 503
        assert report["status"] == "down"
        checks = report["checks"]
        assert checks["database"]["ok"]
        assert checks["migrations"]["ok"]
        assert checks["broker"]["ok"] is False
        assert re.search(rf"broker unreachable: .*{closed_port}", checks["broker"]["detail"])
        assert checks["channel_layer"]["ok"] is False
        code, output = portal.stop(signal.SIGTERM)
    finally:
        portal.kill()
    assert code == 0, output
    assert "web only" in output
    assert "Opsdeck portal stopped." in output


def test_unapplied_migrations_make_the_portal_not_ready(tmp_path):
    portal = PortalProcess(tmp_path)
    portal.manage("migrate", "core", "zero", "--noinput")
    portal.start()
    try:
        status, report = portal.get_json("/health/ready")
    finally:
        portal.kill()
    assert status == 503
    assert report["checks"]["migrations"]["ok"] is False
    assert "run manage.py migrate" in report["checks"]["migrations"]["detail"]


OPERATOR_TOKEN = """
from django.contrib.auth.models import Group
from apps.accounts.models import User
from apps.accounts.roles import roles_setup
from apps.accounts.tokens import token_create
roles_setup()
user = User.objects.create_user("e2e-operator")
user.groups.add(Group.objects.get(name="operator"))
print(token_create(owner=user, name="e2e", scopes=["read", "write"], expires_in_days=1).secret)
"""


def test_embedded_portal_runs_quantum_jobs_in_process_and_streams_them(tmp_path):
    import asyncio
    import json

    import websockets

    from tests.quantum_circuits import ghz_qasm2

    portal = PortalProcess(tmp_path)
    portal.manage("migrate", "--noinput")
    token = portal.manage("shell", "-c", OPERATOR_TOKEN).strip().splitlines()[-1]
    portal.start()

    async def submit_and_watch() -> tuple[list[str], dict]:
        async with websockets.connect(
            f"ws://127.0.0.1:{portal.port}/ws/jobs/", subprotocols=["bearer", token], origin=portal.url
        ) as socket:
            assert json.loads(await socket.recv())["type"] == "jobs.snapshot"
            status, job = await asyncio.to_thread(
                portal.post_json, "/api/v1/quantum/jobs/", {"source": ghz_qasm2(4), "shots": 300}, token=token
            )
            assert status == 201, job
            seen = []
            while not seen or seen[-1] not in ("completed", "failed"):
                seen.append(json.loads(await asyncio.wait_for(socket.recv(), 60))["status"])
            return seen, job

    try:
        seen, job = asyncio.run(submit_and_watch())
        _, job = portal.get_json(f"/api/v1/quantum/jobs/{job['id']}/", token=token)
    finally:
        code, output = portal.stop(signal.SIGINT)
    assert seen == ["queued", "running", "completed"]
    assert job["status"] == "completed", job
    assert set(job["counts"]) == {"0000", "1111"}
    assert code == 0, output
    assert "Traceback" not in output


def test_embedded_portal_validates_a_model_predicts_and_runs_an_inference_job(tmp_path):
    from tests.registry_models import build_tiny_classifier, pack_zip

    archive = pack_zip(build_tiny_classifier(tmp_path / "model", labels=("negative", "positive")))
    portal = PortalProcess(tmp_path / "portal")
    portal.manage("migrate", "--noinput")
    token = portal.manage("shell", "-c", OPERATOR_TOKEN).strip().splitlines()[-1]
    portal.start()

    def until(path: str, done) -> dict:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            _, state = portal.get_json(path, token=token)
            if done(state):
                return state
            time.sleep(0.2)
        raise AssertionError(f"{path} stayed {state}")

    try:
        status, model = portal.post_json(
            "/api/v1/registry/models/", {"name": "sentiment", "task": "text-classification"}, token=token
        )
        assert status == 201, model
        status, version = portal.post_files(
            "/api/v1/registry/models/sentiment/versions/", {}, {"artifact": ("model.zip", archive)}, token=token
        )
        assert status == 201, version
        version = until("/api/v1/registry/models/sentiment/versions/1/", lambda v: v["status"] != "validating")
        assert version["status"] == "ready", version
        status, prediction = portal.post_json(
            "/api/v1/registry/models/sentiment/predict/", {"inputs": ["fine", "broken"], "version": 1}, token=token
        )
        assert status == 200, prediction
        assert [output["label"] in ("negative", "positive") for output in prediction["outputs"]] == [True, True]
        rows = "text\n" + "\n".join(f"row {index} works" for index in range(300)) + "\n"
        status, job = portal.post_files(
            "/api/v1/registry/inference-jobs/",
            {"model": "sentiment", "version": "1"},
            {"file": ("rows.csv", rows.encode())},
            token=token,
        )
        assert status == 201, job
        job = until(f"/api/v1/registry/inference-jobs/{job['id']}/", lambda j: j["status"] not in ("queued", "running"))
    finally:
        code, output = portal.stop(signal.SIGINT)
    assert job["status"] == "completed", job
    assert job["rows_done"] == 300
    assert code == 0, output
    assert "Traceback" not in output


def test_metrics_are_served_under_runportal_and_files_of_stopped_processes_are_dropped(tmp_path):
    metrics = tmp_path / "prometheus"
    metrics.mkdir()
    stale = metrics / "counter_4194303.db"  # a process id beyond any running one
    stale.write_bytes(b"")
    portal = PortalProcess(tmp_path / "portal", PROMETHEUS_MULTIPROC_DIR=str(metrics))
    portal.manage("migrate", "--noinput")
    portal.start()
    try:
        urllib.request.urlopen(portal.url + "/health/live", timeout=10).close()
        with urllib.request.urlopen(portal.url + "/metrics", timeout=10) as response:
            body = response.read().decode()
    finally:
        portal.kill()
    # The portal's own files survive its start: it counted the request it served.
    counted = re.search(r'^django_http_requests_total_by_method_total\{method="GET"\} [1-9]', body, re.MULTILINE)
    assert counted, body[:500]
    assert not stale.exists()
