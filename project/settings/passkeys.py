"""Passkey (WebAuthn) settings: the relying party and the origins it accepts, read and checked once."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from .env import Environment

_HOST_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_KNOWN_ROLES = ("admin", "operator", "viewer", "compliance")  # apps.core.choices.Role; settings import no apps


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _is_host_name(host: str) -> bool:
    return bool(_HOST_NAME.match(host)) and not _is_ip(host)


def default_rp_id(allowed_hosts: list[str]) -> str:
    """The first ALLOWED_HOSTS entry that is a host name (``.example.com`` counts as ``example.com``)."""
    for host in allowed_hosts:
        name = host.lstrip(".").lower()
        if _is_host_name(name):
            return name
    return "localhost"


def passkey_settings(env: Environment, *, allowed_hosts: list[str]) -> dict:
    """django-otp-webauthn's settings from WEBAUTHN_RP_ID, WEBAUTHN_RP_NAME, WEBAUTHN_ALLOWED_ORIGINS and
    PASSKEY_PASSWORDLESS_ROLES."""
    rp_id = env.str("WEBAUTHN_RP_ID", "").lower() or default_rp_id(allowed_hosts)
    if not _is_host_name(rp_id):
        raise ImproperlyConfigured(
            f"WEBAUTHN_RP_ID must be a host name such as portal.example.com (no scheme, port or IP address); "
            f"got {rp_id!r}."
        )
    rp_name = env.str("WEBAUTHN_RP_NAME", "Opsdeck")
    if not rp_name or len(rp_name) > 64:
        raise ImproperlyConfigured("WEBAUTHN_RP_NAME must be 1 to 64 characters long.")
    origins = env.list("WEBAUTHN_ALLOWED_ORIGINS", [])
    for origin in origins:
        parts = urlsplit(origin)
        host = (parts.hostname or "").lower()
        secure = parts.scheme == "https" or (parts.scheme == "http" and host == "localhost")
        if not secure or parts.path not in ("", "/") or parts.query or not host:
            raise ImproperlyConfigured(
                f"WEBAUTHN_ALLOWED_ORIGINS entries must look like https://{rp_id} (http only for localhost); "
                f"got {origin!r}."
            )
        if host != rp_id and not host.endswith(f".{rp_id}"):
            raise ImproperlyConfigured(
                f"WEBAUTHN_ALLOWED_ORIGINS entry {origin!r} is not {rp_id} or one of its subdomains (WEBAUTHN_RP_ID)."
            )
    passwordless = env.list("PASSKEY_PASSWORDLESS_ROLES", [])
    if unknown := sorted(set(passwordless) - set(_KNOWN_ROLES)):
        raise ImproperlyConfigured(
            f"PASSKEY_PASSWORDLESS_ROLES may only name the roles {', '.join(_KNOWN_ROLES)}; "
            f"unknown: {', '.join(unknown)}."
        )
    return {
        "OTP_WEBAUTHN_RP_ID": rp_id,
        "OTP_WEBAUTHN_RP_NAME": rp_name,
        # Unset: https://<rp id>; with the RP id localhost the page's own http://localhost:<port> is accepted too
        # (apps/accounts/passkeys.py), as browsers treat it as a secure context.
        "OTP_WEBAUTHN_ALLOWED_ORIGINS": [o.rstrip("/") for o in origins] or [f"https://{rp_id}"],
        "OTP_WEBAUTHN_HELPER_CLASS": "apps.accounts.passkeys.PasskeyHelper",
        # Passwordless sign-in goes through Opsdeck's own views, which apply PASSKEY_PASSWORDLESS_ROLES.
        "OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN": False,
        "PASSKEY_PASSWORDLESS_ROLES": passwordless,
    }
