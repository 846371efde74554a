"""Reading settings from the environment, with validation.

Every setting that comes from the environment goes through ``Environment`` so
that a bad value always raises ``ImproperlyConfigured`` naming the variable,
and every secret can be given as ``<NAME>_FILE`` (a path whose content is the
value) instead of ``<NAME>``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})
DATABASE_SCHEMES = ("postgres", "postgresql", "pgsql", "sqlite")
REDIS_SCHEMES = ("redis", "rediss")
AMQP_SCHEMES = ("amqp", "amqps")
BROKER_SCHEMES = REDIS_SCHEMES + AMQP_SCHEMES

_UNSET = object()


class Environment:
    """Typed, validated access to environment variables."""

    def __init__(self, environ_mapping: Mapping[str, str] | None = None):
        self.environ = os.environ if environ_mapping is None else environ_mapping

    def raw(self, name: str, default=_UNSET):
        """The value of ``name`` or the content of the file named by ``name_FILE``."""
        file_path = self.environ.get(f"{name}_FILE")
        if file_path:
            try:
                with open(file_path, encoding="utf-8") as handle:
                    return handle.read().rstrip("\r\n")
            except OSError as exc:
                raise ImproperlyConfigured(
                    f"{name}_FILE points at {file_path!r}, which cannot be read: {exc.strerror}."
                ) from exc
        if name in self.environ:
            return self.environ[name]
        if default is _UNSET:
            raise ImproperlyConfigured(f"{name} must be set (or {name}_FILE pointing at a file holding it).")
        return default

    def single_source(self, name: str) -> None:
        """Refuse ``name`` given both directly and as ``name_FILE``: for a value something else reads directly too."""
        if self.environ.get(name) and self.environ.get(f"{name}_FILE"):
            raise ImproperlyConfigured(f"Set {name} or {name}_FILE, not both.")

    def str(self, name: str, default=_UNSET) -> str:
        value = self.raw(name, default)
        return value.strip() if isinstance(value, str) else value

    def secret(self, name: str, *, min_length: int = 1) -> str:
        value = self.raw(name)
        if len(value) < min_length:
            raise ImproperlyConfigured(f"{name} must be at least {min_length} characters long.")
        return value

    def bool(self, name: str, default: bool) -> bool:
        value = self.raw(name, None)
        if value is None:
            return default
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ImproperlyConfigured(f"{name} must be a boolean (true/false, 1/0, yes/no, on/off), got {value!r}.")

    def int(self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self.raw(name, None)
        if value is None:
            return default
        try:
            number = int(value.strip())
        except ValueError:
            raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}.") from None
        if minimum is not None and number < minimum:
            raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}.")
        if maximum is not None and number > maximum:
            raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {number}.")
        return number

    def float(self, name: str, default: float, *, minimum: float | None = None, maximum: float | None = None) -> float:
        value = self.raw(name, None)
        if value is None:
            return default
        try:
            number = float(value.strip())
        except ValueError:
            raise ImproperlyConfigured(f"{name} must be a number such as 0.25, got {value!r}.") from None
        if not math.isfinite(number):
            raise ImproperlyConfigured(f"{name} must be a finite number, got {value!r}.")
        if minimum is not None and number < minimum:
            raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}.")
        if maximum is not None and number > maximum:
            raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {number}.")
        return number

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.str(name, default).lower()
        if value not in choices:
            raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}.")
        return value

    def list(self, name: str, default: list[str] | tuple[str, ...] = ()) -> list[str]:
        value = self.raw(name, None)
        if value is None:
            return list(default)
        return [item.strip() for item in value.split(",") if item.strip()]

    def rate(self, name: str, default: str) -> str:
        """A DRF throttle rate such as ``1000/min``."""
        value = self.str(name, default)
        count, _, period = value.partition("/")
        if not count.isdigit() or period not in ("s", "sec", "second", "m", "min", "minute", "h", "hour", "d", "day"):
            raise ImproperlyConfigured(
                f"{name} must look like '1000/min' (count/second|minute|hour|day), got {value!r}."
            )
        return value

    def database(self, name: str, default: str | None = None) -> dict:
        url = self.str(name, _UNSET if default is None else default)
        scheme = urlsplit(url).scheme
        if scheme not in DATABASE_SCHEMES:
            raise ImproperlyConfigured(
                f"{name} must be a PostgreSQL (postgres://…) or SQLite (sqlite:///path) URL, got scheme {scheme!r}."
            )
        config = environ.Env.db_url_config(url)
        if not config.get("NAME"):
            raise ImproperlyConfigured(f"{name} must name a database (postgres://user@host:port/NAME).")
        return config

    def redis_url(self, name: str) -> str | None:
        url = self.str(name, "")
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme not in REDIS_SCHEMES or not parts.hostname:
            raise ImproperlyConfigured(
                f"{name} must be a redis://[:password@]host:port/db URL "
                f"(got scheme {parts.scheme!r}, host {parts.hostname!r})."
            )
        return url

    def broker_url(self, name: str, default: str) -> str:
        """A Celery broker URL: Redis (redis://, rediss://) or RabbitMQ (amqp://, amqps://); empty means ``default``."""
        url = self.str(name, "") or default
        parts = urlsplit(url)
        if parts.scheme not in BROKER_SCHEMES or not parts.hostname:
            raise ImproperlyConfigured(
                f"{name} must be a redis://, rediss://, amqp:// or amqps:// URL with a host, such as "
                f"amqp://user:password@rabbitmq:5672/vhost (got scheme {parts.scheme!r}, host {parts.hostname!r})."
            )
        return url
