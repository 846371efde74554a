"""The words a PDF report shows a reader: column titles, times, counts and kind names.

CSV and JSON keep the machine names and ISO 8601 times; a PDF is read by people (auditors), so it says "Locked out"
for ``locked_out`` and "6 Dec 2026, 22:50 UTC" for ``2026-12-06T22:50:00+00:00``. Only what is shown changes: the
rows digest is computed over the values as the JSON report holds them.
"""

from __future__ import annotations

import datetime as dt
import json
import re

from .choices import ReportKind
from .rendering import cell_text

# Words written in capitals wherever they appear in a column title or a key fact's name.
_ACRONYMS = {"api": "API", "id": "ID", "ip": "IP", "ips": "IPs", "mfa": "MFA", "otp": "OTP", "totp": "TOTP"}
# Column names whose words alone would not say what the column holds.
_TITLES = {"size_bytes": "Size (bytes)", "prev_hash": "Previous hash", "object_repr": "Object"}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# A time with its UTC offset, as reports write them (``iso``, ``isoformat``): nothing else is read as a time.
_AWARE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,6})?)?(Z|[+-]\d\d:\d\d)")
# Fingerprints are shown this long where space is short (like a Git commit's abbreviation), in full elsewhere.
FINGERPRINT_SHORT_CHARS = 16


def title(name: str) -> str:
    """A column's or key fact's name as a title: ``locked_out`` → "Locked out", ``mfa_devices`` → "MFA devices"."""
    if name in _TITLES:
        return _TITLES[name]
    words = [_ACRONYMS.get(word.lower(), word) for word in name.replace("_", " ").split()]
    if not words:
        return name
    return " ".join([words[0][:1].upper() + words[0][1:], *words[1:]])


def human_time(value: dt.datetime) -> str:
    """A time in UTC as people write it: "6 Dec 2026, 22:50 UTC", with seconds when it has any."""
    moment = value.astimezone(dt.UTC)
    seconds = f":{moment.second:02d}" if moment.second or moment.microsecond else ""
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}, {moment.hour:02d}:{moment.minute:02d}{seconds} UTC"


def _spaced_json(text: str) -> str:
    # Canonical JSON has no spaces, so a line could only break inside it: the same JSON with a space after each
    # comma and colon wraps between its items.
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if isinstance(value, dict | list) else text


def shown(value) -> str:
    """A value as a PDF shows it: times with an offset in words (see ``human_time``), JSON with spaces between its
    items, anything else as in CSV."""
    text = cell_text(value)
    if text[:1] in ("{", "["):
        return _spaced_json(text)
    if _AWARE_TIME.fullmatch(text):
        try:
            return human_time(dt.datetime.fromisoformat(text))
        except ValueError:  # shaped like a time but not one (month 13): shown as it is
            return text
    return text


def counted(number: int, noun: str) -> str:
    """ "1 row", "2 rows", "1,200 rows"."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def kind_label(kind: str) -> str:
    """A report kind's name: "Access review" for ``access_review``."""
    return ReportKind(kind).label if kind in ReportKind.values else title(str(kind))


def filters_text(filters: dict) -> str:
    """A report's filters as "Username: alice; Action prefix: auth.", or "none"."""
    return "; ".join(f"{title(str(key))}: {shown(value)}" for key, value in filters.items()) or "none"


def short_fingerprint(fingerprint: str) -> str:
    """The start of a key fingerprint, enough to tell keys apart at a glance."""
    return fingerprint if len(fingerprint) <= FINGERPRINT_SHORT_CHARS else f"{fingerprint[:FINGERPRINT_SHORT_CHARS]}…"


def longest_word(text: str) -> str:
    """The longest run of characters a line may not be broken in (lines break at spaces only)."""
    return max(text.split(), key=len, default="")
