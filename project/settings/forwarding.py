"""AUDIT_FORWARD_URLS: the audit sinks an install managed as code declares (README "Audit forwarding")."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from apps.audit.sink_urls import SinkUrlError, sink_url_parse

from .env import Environment


def forward_urls(env: Environment, name: str, *, allow_http: bool) -> list[str]:
    """The comma-separated sink URLs in ``name`` (or ``name_FILE``: they may carry credentials), each checked."""
    urls = env.list(name)
    names: set[str] = set()
    for url in urls:
        try:
            target = sink_url_parse(url, allow_http=allow_http)
        except SinkUrlError as exc:
            raise ImproperlyConfigured(f"{name}: {exc}") from None
        sink_name = target.name or target.endpoint
        if sink_name in names:
            raise ImproperlyConfigured(f"{name}: two sinks are named {sink_name!r}; give each a #name.")
        names.add(sink_name)
    return urls
