"""/metrics serves request, database and worker metrics, added up across processes."""

import os
import re
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection

from apps.accounts.tasks import session_clear_expired
from apps.core.models import MaintenanceRun
from tests.helpers import PROJECT_DIR

FINISHED_CLEANUP = {"task": "maintenance.session_clear_expired", "state": "SUCCESS"}


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of metric ``name`` with ``labels`` in a Prometheus text exposition, or None."""
    for line in text.splitlines():
        metric, _, value = line.rpartition(" ")
        metric_name, _, label_text = metric.partition("{")
        if metric_name != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', label_text))
        if all(found.get(key) == expected for key, expected in labels.items()):
            return float(value)
    return None


@pytest.mark.django_db
def test_metrics_include_requests_and_database_queries(client, viewer_user):
    client.force_login(viewer_user)
    client.get("/dashboard/")
    text = client.get("/metrics").content.decode()
    assert _sample(text, "django_http_responses_total_by_status_total", status="200") >= 1
    assert _sample(text, "django_db_execute_total", alias="default", vendor="postgresql") >= 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_metrics_of_a_separate_worker_process_are_served(client):
    counted_before = _sample(client.get("/metrics").content.decode(), "opsdeck_celery_tasks_total", **FINISHED_CLEANUP)
    test_database = connection.settings_dict["NAME"]
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "project", "worker", "--pool=prefork", "--concurrency=1",
         "--queues=maintenance", "--loglevel=WARNING", "--hostname=metrics-test@%h", "--without-mingle",
         "--without-gossip"],
        cwd=PROJECT_DIR,
        env={**os.environ, "TEST_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{test_database}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert session_clear_expired.delay().get(timeout=60) == "Deleted 0 expired sessions."
    finally:
        worker.terminate()
        _, errors = worker.communicate(timeout=30)
    assert worker.returncode == 0, errors
    assert settings.PROMETHEUS_MULTIPROC_DIR.is_dir()
    text = client.get("/metrics").content.decode()
    assert _sample(text, "opsdeck_celery_tasks_total", **FINISHED_CLEANUP) == (counted_before or 0) + 1
    assert MaintenanceRun.objects.get().worker.startswith("metrics-test@")
