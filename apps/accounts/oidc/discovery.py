"""The provider's discovery document, read on first use and cached — never at settings import.

A provider that is down when the portal starts, or later, only makes the SSO button lead to an error page; local
sign-in (the break-glass administrator) never waits for it.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.cache import cache

REQUIRED_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")


class ProviderUnavailable(Exception):
    """The provider's discovery document could not be read or is unusable; the message says which and why."""


def provider_name() -> str:
    """How pages name the provider: the button label and the issuer's host."""
    host = urlsplit(settings.OIDC_ISSUER).netloc
    return f"{settings.OIDC_BUTTON_LABEL} ({host})"


def _cache_key() -> str:
    return "opsdeck:oidc:discovery:" + hashlib.sha256(settings.OIDC_ISSUER.encode()).hexdigest()[:32]


def provider_configuration() -> dict:
    """The discovery document of OIDC_ISSUER (cached OIDC_DISCOVERY_CACHE_SECONDS); raises ProviderUnavailable."""
    document = cache.get(_cache_key())
    if document is not None:
        return document
    url = f"{settings.OIDC_ISSUER}/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT, allow_redirects=False)
        response.raise_for_status()
        document = response.json()
    except requests.RequestException as exc:
        raise ProviderUnavailable(f"{url} could not be read: {type(exc).__name__}.") from None
    except ValueError:
        raise ProviderUnavailable(f"{url} is not a JSON document.") from None
    if not isinstance(document, dict) or str(document.get("issuer", "")).rstrip("/") != settings.OIDC_ISSUER:
        raise ProviderUnavailable(f"{url} names another issuer than OIDC_ISSUER ({settings.OIDC_ISSUER}).")
    missing = [name for name in REQUIRED_ENDPOINTS if not document.get(name)]
    if missing:
        raise ProviderUnavailable(f"{url} lacks {', '.join(missing)}.")
    cache.set(_cache_key(), document, settings.OIDC_DISCOVERY_CACHE_SECONDS)
    return document


def provider_configuration_forget() -> None:
    cache.delete(_cache_key())
