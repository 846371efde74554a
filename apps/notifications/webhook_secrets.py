"""Webhook signing secrets: made here, stored encrypted, decrypted only to sign a delivery or show it once.

The key is derived from SECRET_KEY (HKDF-SHA256), so a database dump alone does not give the secrets away. Keys
of SECRET_KEY_FALLBACKS still decrypt, so that rotating SECRET_KEY the Django way keeps endpoints working;
rotating an endpoint's secret then re-encrypts it with the current key.
"""

from __future__ import annotations

import base64
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix, as Stripe's, tells a pasted secret apart)
# What a whole secret looks like (secret_new), to recognise one pasted anywhere.
SECRET_SHAPE = SECRET_PREFIX + r"[A-Za-z0-9_-]{40,}"
KEY_INFO = b"opsdeck webhook secrets"


class WebhookSecretUnreadable(Exception):
    """The stored secret does not decrypt with SECRET_KEY or its fallbacks (the key changed)."""


def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_INFO).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _keys() -> MultiFernet:
    return MultiFernet([_fernet(key) for key in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS)])


def secret_new() -> str:
    """A new signing secret (256 random bits), as receivers paste it into their configuration."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def secret_seal(secret: str) -> str:
    return _keys().encrypt(secret.encode()).decode("ascii")


def secret_open(sealed: str) -> str:
    try:
        return _keys().decrypt(sealed.encode("ascii")).decode()
    except InvalidToken:
        raise WebhookSecretUnreadable(
            "The endpoint's signing secret cannot be decrypted (SECRET_KEY changed without keeping the old one in "
            "SECRET_KEY_FALLBACKS): rotate its secret."
        ) from None


def secrets_stored() -> list[str]:
    """Every endpoint's signing secret that still decrypts: the diagnostics bundle checks none is in it
    (registered with apps.core.secrets)."""
    from .models import WebhookEndpoint

    values = []
    for sealed in WebhookEndpoint.objects.values_list("secret_encrypted", flat=True).iterator():
        try:
            values.append(secret_open(sealed))
        except WebhookSecretUnreadable:
            continue  # unreadable here, so nothing here can write it out either
    return values
