"""Keeping secrets out of the diagnostics bundle, twice over.

1. By name: a setting (or a key inside one) whose name looks secret has its text replaced by MASK, and the
   password of any URL (``scheme://user:password@host``) is replaced wherever a URL appears.
2. By value: every known secret value — the settings masked by name, URL passwords, secret-looking environment
   variables, and what apps register with apps.core.secrets (webhook signing secrets) — is searched for in every
   file of the bundle, as written (raw, JSON-escaped and percent-encoded), and replaced. A secret that slipped in
   under an innocent name, inside a message or a URL, is caught there.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import PurePath
from urllib.parse import quote, unquote

from django.conf import settings

from apps.core.secrets import secret_patterns, secret_sources

logger = logging.getLogger(__name__)

MASK = "********"
# Names of settings, dict keys and environment variables whose text values are secrets: those ending in one of
# these words (SECRET_KEY, EMAIL_HOST_PASSWORD, "access_key", "clientSecret") or holding one of SECRET_ANYWHERE
# (SECRET_KEY_FALLBACKS). Settings *about* secrets (PASSWORD_HASHERS, PASSWORD_RESET_TIMEOUT) stay readable.
SECRET_LAST_WORDS = frozenset(
    {"secret", "secrets", "password", "passwd", "passphrase", "pass", "token", "tokens", "key", "keys", "salt"}
    | {"dsn", "credential", "credentials", "signature", "pem"}
)
SECRET_ANYWHERE = frozenset({"secret", "secrets", "private"})
NAME_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
# The password of a URL: what follows ``user:`` and precedes ``@`` in the authority.
URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)(?P<password>[^@\s/]+)(?P<at>@)")
# Shorter values are masked by name and inside URLs only: replacing every "abc" in the bundle would garble it.
MIN_VALUE_LENGTH = 4
# Values of secret-looking names that are settings words rather than secrets (an ``..._TOKEN_ENABLED=true``);
# replacing them would garble the JSON itself.
NOT_SECRETS = frozenset({"true", "false", "none", "null", "yes", "no", "on", "off"})


def is_secret_name(name: str) -> bool:
    words = [word.lower() for word in NAME_WORDS.findall(str(name))]
    return bool(words) and (words[-1] in SECRET_LAST_WORDS or not SECRET_ANYWHERE.isdisjoint(words))


def url_passwords_masked(text: str) -> str:
    return URL_PASSWORD.sub(lambda match: f"{match['head']}{MASK}{match['at']}", text)


def json_safe(value, *, secret: bool = False, depth: int = 0):
    """``value`` as JSON data: containers kept, text under a secret-looking name masked, URL passwords masked,
    and other objects named by their type only (their repr could hold anything)."""
    if depth > 12:
        return "<nested too deep>"
    if isinstance(value, dict):
        return {
            str(key): json_safe(item, secret=secret or is_secret_name(key), depth=depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [json_safe(item, secret=secret, depth=depth + 1) for item in items]
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return MASK if secret and len(value) else f"<{len(value)} bytes>"
    if isinstance(value, str | PurePath):
        text = str(value)
        return MASK if secret and text else url_passwords_masked(text)
    if isinstance(value, datetime | date | timedelta):
        return str(value)
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


def _secret_texts(value, *, secret: bool, found: set[str], depth: int = 0) -> None:
    """Collect the text values under secret-looking names, and every URL password, inside ``value``."""
    if depth > 12:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _secret_texts(item, secret=secret or is_secret_name(key), found=found, depth=depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _secret_texts(item, secret=secret, found=found, depth=depth + 1)
    elif isinstance(value, bytes | bytearray):
        if secret:
            found.add(bytes(value).decode("utf-8", "replace"))
    elif isinstance(value, str):
        value = str(value)  # lazy strings (translations) pass for str
        if secret:
            found.add(value)
        for match in URL_PASSWORD.finditer(value):
            found.add(match["password"])
            found.add(unquote(match["password"]))


def settings_snapshot() -> dict:
    """Every upper-case setting, as JSON data, masked by name."""
    return {
        name: json_safe(getattr(settings, name), secret=is_secret_name(name))
        for name in sorted(dir(settings))
        if name.isupper()
    }


def known_secrets(extra: Iterable[str] = ()) -> list[str]:
    """Every secret value the portal knows of, longest first (so a secret containing another is replaced whole)."""
    found: set[str] = set()
    for name in dir(settings):
        if name.isupper():
            _secret_texts(getattr(settings, name), secret=is_secret_name(name), found=found)
    for name, value in os.environ.items():
        _secret_texts({name: value}, secret=False, found=found)
    for name, source in secret_sources().items():
        try:
            found.update(source())
        except Exception:  # a source that cannot answer must not stop the bundle; its secrets are not read either
            logger.exception("secret source %s failed", name)
    found.update(extra)
    lines = {line.strip() for value in found if "\n" in value for line in value.splitlines()}
    # A multi-line key (PEM) is also caught line by line, wherever a part of it was written.
    found |= {line for line in lines if len(line) >= 16 and not line.startswith("-----")}
    kept = (
        value
        for value in found
        if len(value) >= MIN_VALUE_LENGTH
        and value.lower() not in NOT_SECRETS
        and not (value.isdigit() and len(value) < 8)
    )
    return sorted(kept, key=len, reverse=True)


def _forms(secret: str) -> set[str]:
    """How a secret may appear in a written file: as is, inside a JSON string, percent-encoded in a URL."""
    return {secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote(secret)}


def scrubbed(text: str, secrets: list[str]) -> str:
    """``text`` with every URL password, every secret of a registered shape (API tokens, webhook secrets) and
    every form of every known secret replaced by MASK."""
    text = url_passwords_masked(text)
    for pattern in secret_patterns().values():
        text = pattern.sub(MASK, text)
    for secret in secrets:
        for form in sorted(_forms(secret), key=len, reverse=True):
            if form and form in text:
                text = text.replace(form, MASK)
    return text


def leaked(data: bytes, secrets: list[str]) -> list[str]:
    """What of the known secrets (their index in ``secrets``) or registered shapes is found in ``data``; empty when
    nothing is."""
    text = data.decode("utf-8", "replace")
    found = [f"known secret #{index}" for index, secret in enumerate(secrets) if any(f in text for f in _forms(secret))]
    found += [name for name, pattern in secret_patterns().items() if pattern.search(text)]
    return found
