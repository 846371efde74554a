"""Secret-looking values never reach the audit trail."""

import re

MASK = "********"
SECRET_NAME = re.compile(r"pass|secret|token|key|otp|credential|signature|private|session", re.IGNORECASE)


def masked(value, secret: bool = False):
    """``value`` with every value under a secret-looking key replaced by MASK, recursively.

    The structure stays (a masked before/after diff still shows that the field
    changed); empty values stay empty so "was never set" remains visible.
    """
    if isinstance(value, dict):
        return {key: masked(item, secret or bool(SECRET_NAME.search(str(key)))) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item, secret) for item in value]
    if secret and value not in (None, ""):
        return MASK
    return value
