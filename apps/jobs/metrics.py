"""Metrics of the job layer, the same for every kind."""

from prometheus_client import Counter, Gauge

JOBS_FINISHED = Counter("opsdeck_jobs_finished_total", "Jobs that reached a final status.", ["kind", "status"])
JOBS_REQUEUED = Counter(
    "opsdeck_jobs_requeued_total", "Jobs put back in the queue after their worker stopped heartbeating.", ["kind"]
)
# Set by every worker's announcer after it announces itself, from the shared WorkerPresence rows, so that each worker
# host reports the queues nobody consumes any more (its own queues included, once it is the last one left).
WORKERS_LIVE = Gauge(
    "opsdeck_workers",
    "Live workers (announced within WORKER_ANNOUNCE_TIMEOUT seconds) that consume each queue, as last counted.",
    ["queue"],
    multiprocess_mode="mostrecent",
)
