"""Where secrets kept outside the settings can be listed, so that output meant to leave the portal (the
diagnostics bundle) can prove none of them is in it.

An app that stores secrets it can read back (webhook signing secrets, say) registers a source from its
``AppConfig.ready``; core imports no app, so the apps come to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

_sources: dict[str, Callable[[], Iterable[str]]] = {}


def secret_source_register(name: str, source: Callable[[], Iterable[str]]) -> None:
    """``source()`` gives the current values of secrets the app stores (decrypted); called only when needed."""
    _sources[name] = source


def secret_sources() -> dict[str, Callable[[], Iterable[str]]]:
    return dict(_sources)
