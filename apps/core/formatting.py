"""Dates and numbers written one way on every page and in the admin.

A date-time is a ``<time>`` element: its ``datetime`` attribute holds the UTC instant and its text the portal's
time zone with the zone's name ("7 Dec 2026, 14:03 UTC"); static/js/format.js rewrites the text into the
viewer's own zone, in the same shape.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import dateformat, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import ngettext

EMPTY = "—"
DATETIME_FORMAT = "j M Y, H:i T"


def date_time_text(value: datetime) -> str:
    """``value`` as plain text in the current time zone, with the zone's name: "7 Dec 2026, 14:03 CET" (for titles
    and messages, where no ``<time>`` element can go)."""
    return dateformat.format(timezone.localtime(value), DATETIME_FORMAT)


def local_time(value: datetime | None) -> SafeString | str:
    """``value`` as ``<time datetime="…Z">7 Dec 2026, 14:03 CET</time>`` in the current time zone; "—" for none."""
    if not value:  # None, or a template's missing value
        return EMPTY
    instant = value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return format_html('<time datetime="{}">{}</time>', instant, date_time_text(value))


def number(value: int | float | None) -> str:
    """Thousands separated by commas: 100000 → "100,000"; "—" for none (or a template's missing value)."""
    return f"{value:,}" if isinstance(value, int | float) else EMPTY


def count(value: int, singular: str, plural: str = "") -> str:
    """``value`` and the noun that goes with it: "1 job", "2 jobs", "100,000 shots", "3 entries" (``plural`` for
    nouns that do not just take an "s")."""
    return f"{value:,} {ngettext(singular, plural or singular + 's', value)}"
