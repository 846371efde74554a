"""The embedded default: works on a laptop with nothing configured.

The secret key, the audit signing key and the backup encryption key come from
SECRET_KEY, AUDIT_SIGNING_KEY and BACKUP_ENCRYPTION_KEY (or their _FILE) when
given; otherwise each is generated on first start and kept in the data
directory, so sessions, audit checkpoints and backups survive restarts without
anyone having to invent a key.
"""

import os
import secrets

from .base import *  # noqa: F403
from .base import DATA_DIR, env


def _generated_secret(name: str, make=lambda: secrets.token_urlsafe(50)) -> str:
    key_file = DATA_DIR / name
    if not key_file.exists():
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(make())
    return key_file.read_text().strip()


SECRET_KEY = env.raw("SECRET_KEY", None) or _generated_secret("secret_key")
AUDIT_SIGNING_KEY = env.raw("AUDIT_SIGNING_KEY", None) or _generated_secret("audit_signing_key")
BACKUP_ENCRYPTION_KEY = env.raw("BACKUP_ENCRYPTION_KEY", None) or _generated_secret(
    "backup_encryption_key", lambda: secrets.token_hex(32)
)


def _ed25519_private_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return (
        Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )


REPORT_SIGNING_KEY = env.raw("REPORT_SIGNING_KEY", None) or _generated_secret(
    "report_signing_key.pem", _ed25519_private_pem
)
