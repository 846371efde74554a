"""The Celery application, configured from Django settings (CELERY_ namespace)."""

import os

from celery import Celery
from celery.signals import worker_process_shutdown

from apps.core.worker_metrics import WorkerMetricsServer
from apps.jobs.sweeper import JobsSweeper
from apps.jobs.workers import WorkerAnnouncer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings.local")

app = Celery("opsdeck")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Every worker requeues the jobs of workers that stopped heartbeating (README: "How jobs run").
app.steps["worker"].add(JobsSweeper)
# Every worker announces its queues, processor and memory; the quantum router sends jobs only where they fit.
app.steps["worker"].add(WorkerAnnouncer)
# Every worker host serves its own metrics (README: "Metrics").
app.steps["worker"].add(WorkerMetricsServer)


@worker_process_shutdown.connect
def _forget_exited_process_metrics(pid=None, **_kwargs) -> None:
    """Drop the live gauges of a worker child that exits, as prometheus_client requires."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and pid:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, directory)
