"""Date/time inputs the database and Python can both hold: one rule for every filter, body field and command.

Python parses any UTC offset below 24 hours and years 1-9999 in the written offset, but PostgreSQL refuses
offsets beyond ±15:59 (a 500 after the response has begun, when the query only runs mid-stream) and Python
overflows converting 0001-01-01T00:00+01:00 or 9999-12-31T23:00-05:00 to UTC. Real offsets run from -12:00 to
+14:00, so anything beyond ±14:00 is a typo or a probe.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import django_filters
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField
from rest_framework import serializers

MAX_UTC_OFFSET = timedelta(hours=14)
ISO_DATETIME_ERROR = "Enter an ISO 8601 date/time, e.g. 2025-01-31T00:00:00Z."
OFFSET_ERROR = "The UTC offset {offset} is out of range: offsets run from -14:00 to +14:00."
RANGE_ERROR = "The time is out of range: it must lie between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z."


def _offset_text(offset: timedelta) -> str:
    sign, size = ("-", -offset) if offset < timedelta(0) else ("+", offset)
    hours, rest = divmod(int(size.total_seconds()), 3600)
    return f"{sign}{hours:02d}:{rest // 60:02d}"


def validate_storable_datetime(value: datetime) -> None:
    """Refuse an aware ``value`` whose offset is beyond ±14:00 or whose UTC instant Python cannot represent."""
    offset = value.utcoffset()
    if offset is None:
        return
    if abs(offset) > MAX_UTC_OFFSET:
        raise ValidationError(OFFSET_ERROR.format(offset=_offset_text(offset)), code="offset_out_of_range")
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValidationError(RANGE_ERROR, code="out_of_range") from None


class StorableIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 form field that only accepts storable times (see the module docstring)."""

    default_validators = [validate_storable_datetime]
    default_error_messages = {"invalid": ISO_DATETIME_ERROR}


class StorableIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """The filter every datetime query parameter of the API uses: a bad value is a 400 naming the parameter."""

    field_class = StorableIsoDateTimeField


class StorableDateTimeField(serializers.DateTimeField):
    """The same rule for datetimes in request bodies."""

    def enforce_timezone(self, value: datetime) -> datetime:
        # DRF converts aware values to UTC here, which would hide the offset that was given.
        validate_storable_datetime(value)
        return super().enforce_timezone(value)
