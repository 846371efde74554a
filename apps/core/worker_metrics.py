"""Every worker host serves its own metrics, and the depth of each queue as the broker counts it.

Workers write their metrics (jobs finished, durations, shots, registry and audit gauges…) into their host's
PROMETHEUS_MULTIPROC_DIR; the web host's /metrics cannot see another host's directory. ``WorkerMetricsServer``
is a step of every `celery worker` (project/celery.py adds it): its main process serves
``http://<WORKER_METRICS_ADDRESS>:<WORKER_METRICS_PORT>/metrics`` from that directory, plus
``opsdeck_queue_depth{queue}``, read from the broker at each scrape. Several workers on one host share the
directory, so the first to bind the port serves them all and the others carry on without their own endpoint.
The embedded worker of `runportal` serves nothing: its host's /metrics already holds its metrics.
"""

from __future__ import annotations

import logging

from celery import bootsteps
from django.conf import settings

# prometheus_client is imported where it is used, never at import time: project/celery.py imports this module
# before Django's settings set PROMETHEUS_MULTIPROC_DIR, and prometheus_client chooses between per-process
# files and plain memory when it is first imported (memory would leave /metrics empty).

logger = logging.getLogger(__name__)

# A scrape must answer even when the broker does not: each queue gets this long.
BROKER_TIMEOUT_SECONDS = 2


class QueueDepthCollector:
    """``opsdeck_queue_depth{queue}``: messages waiting in each of the portal's queues, asked of the broker."""

    def __init__(self, app):
        self.app = app

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        depth = GaugeMetricFamily(
            "opsdeck_queue_depth", "Messages waiting in each queue, as the broker counts them.", labels=["queue"]
        )
        broker_up = GaugeMetricFamily("opsdeck_broker_up", "1 if the broker answered this scrape, 0 if not.")
        try:
            for queue, count in self.depths().items():
                depth.add_metric([queue], count)
        except Exception as error:
            logger.warning("queue depth unavailable: the broker did not answer (%s)", error)
            broker_up.add_metric([], 0)
            yield broker_up
            return
        broker_up.add_metric([], 1)
        yield broker_up
        yield depth

    def depths(self) -> dict[str, int]:
        with self.app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
            return {queue.name: _queue_depth(connection, queue.name) for queue in settings.CELERY_TASK_QUEUES}


def _queue_depth(connection, name: str) -> int:
    """Messages in ``name``; a queue the broker has not seen yet (nothing ever sent to it) holds none.

    A passive declare that finds no queue closes its channel on AMQP, so each queue gets a channel of its own.
    """
    channel = connection.channel()
    try:
        return channel.queue_declare(queue=name, passive=True).message_count
    except connection.channel_errors:
        return 0
    finally:
        channel.close()


def worker_metrics_registry(app):
    from prometheus_client import CollectorRegistry, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(QueueDepthCollector(app))
    return registry


class WorkerMetricsServer(bootsteps.StartStopStep):
    """Serves this host's metrics while the worker runs (WORKER_METRICS_PORT; 0 turns it off)."""

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.server = None

    def start(self, worker) -> None:
        port = settings.WORKER_METRICS_PORT
        if not port or settings.EMBEDDED:
            return
        from prometheus_client import start_http_server

        address = settings.WORKER_METRICS_ADDRESS
        try:
            self.server, _thread = start_http_server(port, addr=address, registry=worker_metrics_registry(worker.app))
        except OSError as error:
            logger.info(
                "worker metrics not served from this worker: %s:%s is taken (%s); "
                "another worker of this host serves the same directory there",
                address,
                port,
                error.strerror,
            )
            return
        logger.info("worker metrics on http://%s:%s/metrics", address, port)

    def stop(self, worker) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    shutdown = stop
