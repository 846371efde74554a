"""Per-request context: request id and client address, also carried into Celery tasks and logs."""

from __future__ import annotations

import ipaddress
import re
import uuid
from contextvars import ContextVar

from celery.signals import before_task_publish, task_postrun, task_prerun
from django.conf import settings

REQUEST_ID_HEADER = "X-Request-ID"
# Accept a caller's request id only when it is short and harmless to log and store.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

current_request_id: ContextVar[str] = ContextVar("current_request_id", default="")
current_request: ContextVar[object | None] = ContextVar("current_request", default=None)


def client_ip(request) -> str | None:
    """The client address of a Django request (see ``client_ip_from``)."""
    return client_ip_from(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR", ""))


def client_ip_from(remote_addr: str, forwarded_for: str) -> str | None:
    """The client address, trusting X-Forwarded-For only through TRUSTED_PROXY_COUNT proxies.

    Each trusted proxy appends the address it received the request from, so the
    client is the entry that many places from the end; anything further left was
    written by the client and is ignored.
    """
    candidate = remote_addr
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [part.strip() for part in forwarded_for.split(",") if part.strip()]
        if len(forwarded) >= proxies:
            candidate = forwarded[-proxies]
    try:
        return ipaddress.ip_address(candidate).compressed
    except ValueError:
        return None


class RequestContextMiddleware:
    """Give every request an id (the caller's X-Request-ID if valid) and echo it in the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request.request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        id_token = current_request_id.set(request.request_id)
        request_token = current_request.set(request)
        try:
            response = self.get_response(request)
        finally:
            current_request.reset(request_token)
            current_request_id.reset(id_token)
        response[REQUEST_ID_HEADER] = request.request_id
        return response


class RequestIdLogFilter:
    """Adds ``request_id`` to every log record (empty outside requests and tasks)."""

    def filter(self, record) -> bool:
        record.request_id = current_request_id.get()
        return True


@before_task_publish.connect
def _send_request_id_with_task(headers=None, **_kwargs) -> None:
    if headers is not None and current_request_id.get():
        headers.setdefault("request_id", current_request_id.get())


@task_prerun.connect
def _adopt_request_id_of_task(task=None, **_kwargs) -> None:
    current_request_id.set(getattr(task.request, "request_id", None) or "")


@task_postrun.connect
def _forget_request_id_of_task(**_kwargs) -> None:
    current_request_id.set("")
