"""Throttling of API requests without valid credentials, per client address, before authentication.

DRF checks throttles only after authentication and permissions have passed, so
a request with no credentials, or refused ones, is answered 401/403 before any
throttle sees it and a client could send them without limit. This middleware
counts such requests per client address in the shared cache (Redis outside the
embedded mode, so the count holds across processes and hosts) and answers 429
with ``Retry-After`` once the address is over the anonymous rate
(``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["anon"]``, ``API_THROTTLE_ANON``).
Signed-in requests are not counted here: DRF's user throttle limits them.
"""

from __future__ import annotations

import ipaddress
import math
import time
from contextlib import suppress

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from .request_context import client_ip

API_PREFIX = "/api/"
CACHE_KEY_PREFIX = "opsdeck:throttle:anon:"
# One IPv6 subscriber is usually given a whole /64: stepping through it must not buy a fresh allowance.
IPV6_CLIENT_PREFIX = 64


def client_network(request: HttpRequest) -> str:
    """Who a request is counted against: the client's IPv4 address or IPv6 /64 ("unknown" if unreadable)."""
    text = client_ip(request)
    if text is None:
        return "unknown"
    address = ipaddress.ip_address(text)
    if address.version == 4:
        return text
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return ipaddress.ip_network(f"{text}/{IPV6_CLIENT_PREFIX}", strict=False).compressed


class _AnonymousRate(SimpleRateThrottle):
    """DRF's reading of the "anon" rate, looked up per request so that changed settings apply at once."""

    scope = "anon"

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


def _accepted_credentials(request: HttpRequest) -> bool:
    # Asked only for addresses already over the rate, so one attacker's flood does not lock out
    # a signed-in user behind the same address; a valid request costs one extra authentication then.
    api_request = Request(request, authenticators=[auth() for auth in api_settings.DEFAULT_AUTHENTICATION_CLASSES])
    try:
        return api_request.user.is_authenticated
    except exceptions.APIException:
        return False


def _count(key: str, window_seconds: int) -> None:
    # add() creates the window's counter with its expiry; incr() is atomic in Redis. The key names its
    # window, so it can only vanish once the window is over, when the count no longer matters.
    if not cache.add(key, 1, timeout=window_seconds):
        with suppress(ValueError):
            cache.incr(key)


def throttled_response(wait_seconds: int) -> JsonResponse:
    """429 in the API's error shape, with ``Retry-After``."""
    throttled = exceptions.Throttled(wait_seconds)
    response = JsonResponse(
        {"detail": str(throttled.detail), "code": throttled.default_code, "retry_after_seconds": wait_seconds},
        status=throttled.status_code,
    )
    response["Retry-After"] = str(wait_seconds)
    return response


class AnonymousThrottleMiddleware:
    """Answer 429 to API requests without accepted credentials once their address is over the anonymous rate.

    Fixed windows of the rate's period: a window's count is one cache key, so
    checking and counting cost one Redis round trip each.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        rate = _AnonymousRate() if request.path.startswith(API_PREFIX) else None
        if rate is None or rate.num_requests is None:
            return self.get_response(request)
        now = time.time()
        window_start = int(now // rate.duration) * rate.duration
        key = f"{CACHE_KEY_PREFIX}{client_network(request)}:{window_start}"
        if (cache.get(key) or 0) >= rate.num_requests and not _accepted_credentials(request):
            return throttled_response(max(1, math.ceil(window_start + rate.duration - now)))
        response = self.get_response(request)
        # DRF puts the user it authenticated (or AnonymousUser after a refusal) on the Django request.
        if not request.user.is_authenticated:
            _count(key, rate.duration)
        return response
