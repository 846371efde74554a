"""Metrics as deployed: `runportal` (web only) and a separate `celery worker`, each with its own metrics directory
as on two hosts; after real work, each endpoint reports its own host's work, and the worker's reports queue depths."""

import signal
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from apps.accounts.tokens import token_create
from project.celery import app as celery_app
from tests.quantum_circuits import ghz_qasm2

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return response.read().decode()


def _sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def _scrape_until(url: str, name: str, timeout: float = 30, **labels: str) -> str:
    """Worker children write their counters as they finish a task: scrape until ``name`` shows."""
    deadline = time.monotonic() + timeout
    while True:
        text = _scrape(url)
        if _sample(text, name, **labels) or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


def test_web_and_worker_hosts_each_serve_their_own_work_and_the_queue_depths(web_and_worker_hosts, operator_user):
    portal, worker_metrics = web_and_worker_hosts
    token = token_create(owner=operator_user, name="metrics", scopes=["read", "write"], expires_in_days=1).secret
    status, job = portal.post_json("/api/v1/quantum/jobs/", {"source": ghz_qasm2(3), "shots": 200}, token=token)
    assert status == 201, job
    deadline = time.monotonic() + 60
    while job["status"] not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
        _, job = portal.get_json(f"/api/v1/quantum/jobs/{job['id']}/", token=token)
    assert job["status"] == "completed", job
    for _ in range(3):
        celery_app.send_task("registry.metrics_test_waiting", queue="registry")

    worker = _scrape_until(worker_metrics, "quantum_jobs_total", status="completed", method="automatic")
    assert _sample(worker, "quantum_jobs_total", status="completed", method="automatic") == 1
    assert _sample(worker, "quantum_shots_total") == 200
    assert _sample(worker, "opsdeck_broker_up") == 1
    assert _sample(worker, "opsdeck_queue_depth", queue="registry") == 3
    assert _sample(worker, "opsdeck_queue_depth", queue="quantum") == 0
    # The worker host serves no web requests; the web host runs no jobs.
    assert _sample(worker, "django_http_requests_total_by_method_total", method="POST") is None

    web = _scrape(portal.url + "/metrics")
    assert _sample(web, "django_http_requests_total_by_method_total", method="POST") >= 1
    assert _sample(web, "quantum_jobs_total", status="completed", method="automatic") is None

    code, output = portal.stop(signal.SIGTERM)
    assert code == 0, output
    assert "Traceback" not in output
