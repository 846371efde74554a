"""The backup encryption key: parsing the setting, a public fingerprint, and generating new keys.

The key itself never leaves this module in readable form: errors name the setting and the expected form, and
manifests, logs and the backup header only ever carry ``key_id``.
"""

import base64
import binascii
import hashlib
import secrets
import string

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KEY_BYTES = 32
EXPECTED_FORM = (
    "64 hexadecimal characters or the base64 (standard or URL-safe) encoding of exactly 32 bytes; "
    "`manage.py backup genkey` prints a new one"
)
# Domain separation: the fingerprint must not be a plain hash of the key that could be reused elsewhere.
KEY_ID_CONTEXT = b"opsdeck-backup-key-id"


class BackupKeyError(ImproperlyConfigured):
    """The backup key is missing or malformed. The message never contains the key."""


def parse_key(value: str | None, *, setting: str = "BACKUP_ENCRYPTION_KEY") -> bytes:
    """The 32 key bytes encoded in ``value``; ``setting`` is the name used in error messages."""
    if value is None or not str(value).strip():
        raise BackupKeyError(
            f"No backup key configured: set {setting} or {setting}_FILE to {EXPECTED_FORM}. "
            "Keep a copy somewhere safe: without the key the backups cannot be restored."
        )
    if not isinstance(value, str):
        raise BackupKeyError(f"{setting} must be a string of {EXPECTED_FORM}.")
    text = value.strip()
    if len(text) == 2 * KEY_BYTES and all(char in string.hexdigits for char in text):
        return bytes.fromhex(text)
    try:
        # One alphabet for both variants; padding is optional because URL-safe keys are often written without it.
        key = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BackupKeyError(f"{setting} is neither hexadecimal nor base64: it must be {EXPECTED_FORM}.") from None
    if len(key) != KEY_BYTES:
        raise BackupKeyError(
            f"{setting} decodes to {len(key)} bytes instead of {KEY_BYTES}: it must be {EXPECTED_FORM}."
        )
    return key


def backup_key() -> bytes:
    """The configured backup encryption key (``settings.BACKUP_ENCRYPTION_KEY``) as 32 bytes."""
    return parse_key(getattr(settings, "BACKUP_ENCRYPTION_KEY", None))


def key_id(key: bytes) -> str:
    """A short public fingerprint of ``key``: tells which key a backup needs without revealing it."""
    return hashlib.sha256(KEY_ID_CONTEXT + key).hexdigest()[:16]


def generate_key() -> str:
    """A new random key in the hexadecimal form ``BACKUP_ENCRYPTION_KEY`` accepts."""
    return secrets.token_hex(KEY_BYTES)
