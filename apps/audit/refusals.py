"""Refused requests in the audit trail: bounded per client and window, yet all counted.

Writing one chained row per refusal let anyone on the network grow the trail
without limit and hold the chain lock for everybody. Refusals are grouped by
source (client address, IPv6 /64, and the signed-in user, if any) and fixed
window of AUDIT_REFUSAL_WINDOW_SECONDS:

* the first refusal of a source in a window is written at once as
  ``access.denied``, with its method, path and status, as before;
* every refusal, that first one included, is counted in the shared cache;
* once the window is closed, the beat task ``maintenance.audit_refusals_flush``
  writes one ``access.denied.summary`` per source that was refused more than
  once: the count per status and the first and last time.

The beat task, not the source's next refusal, writes the summary, so a burst
that simply stops is summarised all the same. Counts wait in the cache for
REFUSAL_KEEP_SECONDS: a beat that is down for longer, or a cache that restarts,
loses the counts of those windows; their first refusals are already in the trail.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from apps.core import formatting
from apps.core.request_context import client_ip
from apps.core.throttling import client_network

from .choices import Outcome
from .services import event_record

REFUSED_STATUSES = (401, 403, 429)
CACHE_KEY_PREFIX = "opsdeck:refused:"
REFUSAL_KEEP_SECONDS = 24 * 3600
# A window is summarised only this long after it closed: a refusal computed its window just
# before the close may still be counting, and hosts' clocks differ by a little.
FLUSH_GRACE_SECONDS = 30
_FLUSHED_THROUGH_KEY = f"{CACHE_KEY_PREFIX}flushed-through"
_BATCH = 500


def is_refusal(response: HttpResponse) -> bool:
    """401, 403, or a throttle's 429 (it says when to retry); a quota's 429 answers a write, recorded as such."""
    status = response.status_code
    return status in (401, 403) or (status == 429 and response.has_header("Retry-After"))


def _window_key(window_start: int, *parts: object) -> str:
    return ":".join([f"{CACHE_KEY_PREFIX}{window_start}", *map(str, parts)])


def _count(key: str) -> int:
    if cache.add(key, 1, timeout=REFUSAL_KEEP_SECONDS):
        return 1
    return cache.incr(key)


def refusal_record(*, request: HttpRequest, status: int, details: dict) -> None:
    """Count one refused request; write it to the trail if it is its source's first in the window."""
    now = timezone.now()
    window = settings.AUDIT_REFUSAL_WINDOW_SECONDS
    window_start = int(now.timestamp()) // window * window
    user = getattr(request, "user", None)
    actor_id = user.pk if user is not None and user.is_authenticated else None
    network = client_network(request)
    source = hashlib.sha256(f"{network}|{actor_id or ''}".encode()).hexdigest()[:32]
    stamp = now.isoformat()
    first = cache.add(_window_key(window_start, source, "first"), stamp, timeout=REFUSAL_KEEP_SECONDS)
    _count(_window_key(window_start, source, status))
    cache.set(_window_key(window_start, source, "last"), stamp, timeout=REFUSAL_KEEP_SECONDS)
    if first:
        slot = _count(_window_key(window_start, "sources"))
        described = {"source": source, "ip": client_ip(request) or "", "client": network, "actor_id": actor_id}
        cache.set(_window_key(window_start, "source", slot), described, timeout=REFUSAL_KEEP_SECONDS)
        event_record(action="access.denied", outcome=Outcome.DENIED, changes=details, request=request)


def _batched(items: list, size: int) -> Iterable[list]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]


def _summarise(window_start: int, window: int, described: dict) -> bool:
    source = described["source"]
    # Claimed before writing, so two overlapping flushes never write the same summary twice.
    if not cache.add(_window_key(window_start, source, "summarised"), 1, timeout=REFUSAL_KEEP_SECONDS):
        return False
    keys = {status: _window_key(window_start, source, status) for status in REFUSED_STATUSES}
    first_key, last_key = _window_key(window_start, source, "first"), _window_key(window_start, source, "last")
    stored = cache.get_many([*keys.values(), first_key, last_key])
    statuses = {str(status): stored[key] for status, key in keys.items() if stored.get(key)}
    count = sum(statuses.values())
    if count < 2:  # a single refusal is already in the trail, complete
        return False
    actor = get_user_model().objects.filter(pk=described["actor_id"]).first() if described["actor_id"] else None
    event_record(
        action="access.denied.summary",
        outcome=Outcome.DENIED,
        actor=actor,
        ip=described["ip"],
        changes={
            "count": count,
            "statuses": statuses,
            "first": stored.get(first_key, ""),
            "last": stored.get(last_key, ""),
            "client": described["client"],
            "window_start": datetime.fromtimestamp(window_start, UTC).isoformat(),
            "window_seconds": window,
        },
    )
    return True


def _flush_window(window_start: int, window: int) -> int:
    sources = cache.get(_window_key(window_start, "sources")) or 0
    slot_keys = [_window_key(window_start, "source", slot) for slot in range(1, sources + 1)]
    written = 0
    for batch in _batched(slot_keys, _BATCH):
        for described in cache.get_many(batch).values():
            written += _summarise(window_start, window, described)
    return written


def refusals_flush() -> str:
    """Write the summaries of closed windows (beat task every five minutes); returns what was done.

    Picks up after the last window it finished, and looks back at most
    REFUSAL_KEEP_SECONDS, as far as counts are kept.
    """
    now = int(timezone.now().timestamp())
    window = settings.AUDIT_REFUSAL_WINDOW_SECONDS
    oldest = (now - REFUSAL_KEEP_SECONDS) // window * window
    resume = max(oldest, (cache.get(_FLUSHED_THROUGH_KEY) or 0) + 1)
    start = -(-resume // window) * window  # the first window starting at or after ``resume``
    closed_before = now - FLUSH_GRACE_SECONDS - window  # the last window that may be summarised starts here
    windows = summaries = 0
    for window_start in range(start, closed_before + 1, window):
        summaries += _flush_window(window_start, window)
        cache.set(_FLUSHED_THROUGH_KEY, window_start, timeout=REFUSAL_KEEP_SECONDS)
        windows += 1
    return (
        f"Summarised refused requests of {formatting.count(windows, 'closed window')} "
        f"in {formatting.count(summaries, 'event')}."
    )
