"""The Celery broker: Redis by default, RabbitMQ for larger installs (README, "The task broker").

Celery reads CELERY_BROKER_URL (and a few other variables) from the environment before its configured values. The
settings therefore read that same variable, validate it, and refuse the others, so that what the settings say is
what Celery uses.
"""

from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from .env import AMQP_SCHEMES, Environment

EMBEDDED_BROKER_URL = "memory://localhost/"
QUEUE_NAMES = ("default", "quantum", "registry", "maintenance")
# Environment variables Celery would prefer to the portal's settings, and why the portal has no use for them.
OVERRIDING_CELERY_VARIABLES = {
    "CELERY_BROKER_READ_URL": "CELERY_BROKER_URL names the one broker, for sending and receiving",
    "CELERY_BROKER_WRITE_URL": "CELERY_BROKER_URL names the one broker, for sending and receiving",
    "CELERY_RESULT_BACKEND": "task results are kept in REDIS_URL",
}


def broker_url(env: Environment, *, redis_url: str | None) -> str:
    """CELERY_BROKER_URL, validated; REDIS_URL when unset; the in-process broker in embedded mode."""
    for name, reason in OVERRIDING_CELERY_VARIABLES.items():
        if env.environ.get(name):
            raise ImproperlyConfigured(f"{name} is not supported ({reason}); unset it.")
    env.single_source("CELERY_BROKER_URL")  # Celery would take the variable whatever the file says
    if redis_url is None:
        if env.str("CELERY_BROKER_URL", ""):
            raise ImproperlyConfigured(
                "CELERY_BROKER_URL needs REDIS_URL as well (the channel layer and cache stay on Redis); "
                "without REDIS_URL the portal runs embedded, with its broker in process."
            )
        return EMBEDDED_BROKER_URL
    return env.broker_url("CELERY_BROKER_URL", redis_url)


def is_amqp(url: str) -> bool:
    return urlsplit(url).scheme in AMQP_SCHEMES


def broker_transport_options(url: str, *, task_time_limit: int, priority_levels: int) -> dict:
    """Celery's BROKER_TRANSPORT_OPTIONS for the broker at ``url``: each transport takes its own."""
    if url == EMBEDDED_BROKER_URL:
        # The in-memory transport polls once a second by default: far too slow for interactive jobs.
        return {"polling_interval": 0.01}
    if is_amqp(url):
        # RabbitMQ confirms every message it stored, so a message it refuses fails the submit (503) at once
        # rather than being lost. Redelivery needs no option: RabbitMQ hands a message back as soon as the
        # connection of the worker holding it closes.
        return {"confirm_publish": True}
    # A task not acknowledged within the visibility timeout is delivered again, so it
    # must outlast the longest task or late-acknowledged tasks would run twice.
    # Ten priority levels per queue (0 first): quantum jobs of higher priority overtake older ones.
    return {
        "visibility_timeout": task_time_limit + 600,
        "priority_steps": list(range(priority_levels)),
        "sep": ":",
        "queue_order_strategy": "priority",
    }


def task_queues(*, priority_levels: int, quantum_queues: tuple[str, ...] = ("quantum",)) -> list[Queue]:
    """The queues; only the quantum ones (QUANTUM_QUEUES) order their messages by priority.

    On RabbitMQ these are classic queues, the quantum one with ``x-max-priority``: RabbitMQ 3.10's quorum queues
    ignore message priorities, and quantum jobs of higher priority must overtake older ones. Classic queues are
    durable and Celery's messages persistent, so queued work survives a restart of the RabbitMQ node; what they
    lack is replication over a RabbitMQ cluster (a node lost for good takes its queued messages with it). Redis
    ignores queue arguments; its levels come from ``priority_steps``.
    """
    priority = {"x-max-priority": priority_levels - 1}  # levels 0 … priority_levels - 1
    names = [name for name in QUEUE_NAMES if name != "quantum"]
    names[1:1] = quantum_queues
    return [Queue(name, queue_arguments=priority if name in quantum_queues else None) for name in names]
