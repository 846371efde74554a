"""Where secrets kept outside the settings can be listed, so that output meant to leave the portal (the
diagnostics bundle) can prove none of them is in it.

An app that stores secrets it can read back (webhook signing secrets, say) registers a source from its
``AppConfig.ready``, and one whose secrets have a recognisable shape (API tokens) a pattern; core imports no app,
so the apps come to it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

_sources: dict[str, Callable[[], Iterable[str]]] = {}
_patterns: dict[str, re.Pattern] = {}


def secret_source_register(name: str, source: Callable[[], Iterable[str]]) -> None:
    """``source()`` gives the current values of secrets the app stores (decrypted); called only when needed."""
    _sources[name] = source


def secret_sources() -> dict[str, Callable[[], Iterable[str]]]:
    return dict(_sources)


def secret_pattern_register(name: str, pattern: str) -> None:
    """Secrets the portal cannot read back (API tokens are stored hashed) but can recognise by their shape."""
    _patterns[name] = re.compile(pattern)


def secret_patterns() -> dict[str, re.Pattern]:
    return dict(_patterns)
