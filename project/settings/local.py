"""The embedded default: works on a laptop with nothing configured.

The secret key comes from SECRET_KEY (or SECRET_KEY_FILE) when given; otherwise
one is generated on first start and kept in the data directory, so sessions
survive restarts without anyone having to invent a key.
"""

import os
import secrets

from .base import *  # noqa: F403
from .base import DATA_DIR, env


def _generated_secret_key() -> str:
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return key_file.read_text().strip()


SECRET_KEY = env.raw("SECRET_KEY", None) or _generated_secret_key()
