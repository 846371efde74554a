"""Metrics of the job layer, the same for every kind."""

from prometheus_client import Counter

JOBS_FINISHED = Counter("opsdeck_jobs_finished_total", "Jobs that reached a final status.", ["kind", "status"])
JOBS_REQUEUED = Counter(
    "opsdeck_jobs_requeued_total", "Jobs put back in the queue after their worker stopped heartbeating.", ["kind"]
)
