"""Portal metrics beyond django-prometheus's request and database metrics.

In multiprocess mode (PROMETHEUS_MULTIPROC_DIR) each worker process writes its
own file and /metrics on the same host adds them up.
"""

from celery.signals import task_postrun
from prometheus_client import Counter

CELERY_TASKS = Counter(
    "opsdeck_celery_tasks",
    "Celery tasks finished by this host's workers, by task name and final state.",
    ["task", "state"],
)


@task_postrun.connect
def _count_finished_task(sender=None, state=None, **_kwargs) -> None:
    CELERY_TASKS.labels(task=getattr(sender, "name", "unknown"), state=state or "UNKNOWN").inc()
