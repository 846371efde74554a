"""Secret-looking values never reach the audit trail."""

import re

MASK = "********"
SECRET_NAME = re.compile(r"pass|secret|token|key|otp|credential|signature|private|session", re.IGNORECASE)


def masked(value, name: str = ""):
    """``value`` with every entry under a secret-looking name replaced by MASK, recursively."""
    if name and SECRET_NAME.search(name):
        return MASK if value not in (None, "") else value
    if isinstance(value, dict):
        return {key: masked(item, str(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item, name) for item in value]
    return value
