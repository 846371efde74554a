"""Handing work to the task broker once its rows are committed, and what happens when the broker refuses it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

# A broker that is down usually comes back within a restart; clients are told to retry after this many seconds.
QUEUE_RETRY_AFTER_SECONDS = 30


def message_priority(level: int) -> int:
    """The task message priority that has the broker deliver ``level`` 0 (first) … TASK_PRIORITY_LEVELS - 1 (last).

    The two brokers count opposite ways: Redis (kombu's ``priority_steps``) takes the lowest number first,
    RabbitMQ's priority queues (``x-max-priority``) the highest.
    """
    if urlsplit(settings.CELERY_BROKER_URL).scheme in ("amqp", "amqps"):
        return settings.TASK_PRIORITY_LEVELS - 1 - level
    return level


class QueueUnavailable(Exception):
    """The task broker did not take the message: the work was marked failed, and the caller should retry later.

    The API answers 503 with a Retry-After header (apps.core.api.errors.exception_handler).
    """

    retry_after_seconds = QUEUE_RETRY_AFTER_SECONDS


def enqueue_on_commit(
    send: Callable[[], None],
    *,
    refused: Callable[[str], None],
    what: str,
    retry: str = "Submit again",
    outcome: str = "was marked failed; nothing will run",
) -> None:
    """Send the task message(s) with ``send()`` once the current transaction has committed.

    The rows must exist before a worker can look for them, so the message can only follow the commit. If the
    broker then refuses it (down, unreachable), ``refused(reason)`` (a reason fit to show users) marks the
    committed rows failed, so none is left queued with no message that would ever run it, and QueueUnavailable
    reaches the caller. ``what`` names the work in the message (e.g. "the job"), ``outcome`` what ``refused`` did
    with it, ``retry`` what the user does once the queue is back (e.g. "Re-validate it").
    """

    def send_or_fail() -> None:
        try:
            send()
        except OperationalError as exc:
            logger.error("The task broker refused %s: %s", what, exc)
            refused("the task queue was unavailable")
            raise QueueUnavailable(
                f"The task queue is unavailable, so {what} could not be queued and {outcome}. "
                f"{retry} in {QUEUE_RETRY_AFTER_SECONDS} seconds or later."
            ) from exc

    transaction.on_commit(send_or_fail)
