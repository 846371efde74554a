"""Portal metrics beyond django-prometheus's request and database metrics.

In multiprocess mode (PROMETHEUS_MULTIPROC_DIR) each worker process writes its
own file and /metrics on the same host adds them up.
"""

from celery.signals import task_postrun
from prometheus_client import Counter, Gauge

CELERY_TASKS = Counter(
    "opsdeck_celery_tasks",
    "Celery tasks finished by this host's workers, by task name and final state.",
    ["task", "state"],
)

# Set by every /health/ready probe (load balancer, orchestrator), so that alerting sees what the probes see; a
# host's web processes share one value per check, the one probed last.
READINESS_CHECK_OK = Gauge(
    "opsdeck_readiness_check_ok",
    "1 if the readiness check passed at the last /health/ready probe, 0 if it failed; required=false checks only "
    "degrade readiness.",
    ["check", "required"],
    multiprocess_mode="mostrecent",
)


@task_postrun.connect
def _count_finished_task(sender=None, state=None, **_kwargs) -> None:
    CELERY_TASKS.labels(task=getattr(sender, "name", "unknown"), state=state or "UNKNOWN").inc()
