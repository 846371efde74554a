"""Celery on either broker within one test run: Redis (the test settings' own) or RabbitMQ on a virtual host of
the run's own, created and deleted with ``rabbitmqctl``."""

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.test import override_settings
from kombu import pools

from project.celery import app as celery_app
from project.settings.broker import broker_transport_options

# The RabbitMQ of this machine (README, "The task broker"); the tests add a virtual host of their own to it.
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")
RABBITMQ_USER = "guest"


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "--quiet", *args], check=True, capture_output=True, timeout=60)


@contextmanager
def rabbitmq_vhost(name: str) -> Iterator[str]:
    """An empty RabbitMQ virtual host ``name`` for the duration, given as a broker URL."""
    _rabbitmqctl("add_vhost", name)
    try:
        _rabbitmqctl("set_permissions", "-p", name, RABBITMQ_USER, ".*", ".*", ".*")
        yield f"{RABBITMQ_URL}/{name}"
    finally:
        _rabbitmqctl("delete_vhost", name)


@contextmanager
def celery_broker(url: str) -> Iterator[str]:
    """The settings, and so Celery in this process, on the broker at ``url`` (with its transport options)."""
    options = broker_transport_options(
        url, task_time_limit=settings.CELERY_TASK_TIME_LIMIT, priority_levels=settings.TASK_PRIORITY_LEVELS
    )
    with override_settings(CELERY_BROKER_URL=url, CELERY_BROKER_TRANSPORT_OPTIONS=options):
        _forget_connections()
        try:
            yield url
        finally:
            _forget_connections()


def _forget_connections() -> None:
    """Close kombu's pooled connections, and forget them as Celery does in a forked child: they lead to the other
    broker."""
    pools.reset()
    celery_app._after_fork()


def messages_waiting(queue: str) -> int:
    """Messages in ``queue`` on the broker that no worker has taken yet (RabbitMQ: ready; Redis: in the lists)."""
    with celery_app.connection_for_write() as connection:
        return connection.default_channel.queue_declare(queue=queue, passive=True).message_count
