"""Dates, numbers and counted nouns written one way (apps/core/formatting.py and its template filters)."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from django.utils import timezone

from apps.core.formatting import count, local_time, number

WINTER = datetime(2026, 12, 7, 13, 3, 27, tzinfo=UTC)
SUMMER = datetime(2026, 7, 7, 13, 3, tzinfo=UTC)


def _rendered(source: str, **context) -> str:
    return Template("{% load opsdeck_format %}" + source).render(Context(context))


def test_a_date_time_is_a_time_element_with_the_utc_instant_and_the_portals_zone_named():
    assert _rendered("{{ at|local_time }}", at=WINTER) == (
        '<time datetime="2026-12-07T13:03:27Z">7 Dec 2026, 13:03 UTC</time>'
    )


@pytest.mark.parametrize(
    ("zone", "at", "text"),
    [
        ("Europe/Berlin", WINTER, "7 Dec 2026, 14:03 CET"),
        ("Europe/Berlin", SUMMER, "7 Jul 2026, 15:03 CEST"),
        ("America/New_York", WINTER, "7 Dec 2026, 08:03 EST"),
    ],
)
def test_the_text_is_in_the_current_time_zone_with_its_abbreviation(zone, at, text):
    with timezone.override(ZoneInfo(zone)):
        rendered = local_time(at)
    assert rendered.endswith(f">{text}</time>")
    assert f'datetime="{at:%Y-%m-%dT%H:%M:%S}Z"' in rendered  # the instant stays UTC whatever the zone


def test_an_instant_given_with_an_offset_keeps_its_moment():
    berlin = WINTER.astimezone(ZoneInfo("Europe/Berlin"))
    assert local_time(berlin) == local_time(WINTER)


@pytest.mark.parametrize("missing", [None, ""])
def test_a_missing_date_time_is_a_dash(missing):
    assert _rendered("{{ at|local_time }}", at=missing) == "—"


def test_numbers_have_thousands_separators():
    assert _rendered("{{ n|number }} shots", n=100000) == "100,000 shots"
    assert number(None) == "—"


@pytest.mark.parametrize(
    ("value", "words", "text"),
    [
        (0, ("job",), "0 jobs"),
        (1, ("job",), "1 job"),
        (2, ("job",), "2 jobs"),
        (100000, ("shot",), "100,000 shots"),
        (1, ("failure log entry", "failure log entries"), "1 failure log entry"),
        (3, ("failure log entry", "failure log entries"), "3 failure log entries"),
    ],
)
def test_counted_nouns_take_the_singular_only_for_one(value, words, text):
    assert count(value, *words) == text


@pytest.mark.parametrize(
    ("value", "nouns", "text"),
    [
        (1, "hour", "1 hour"),
        (24, "hour", "24 hours"),
        (1, "entry,entries", "1 entry"),
        (2, "entry,entries", "2 entries"),
    ],
)
def test_the_count_filter_agrees_the_noun_with_the_number(value, nouns, text):
    assert _rendered("{{ n|count:nouns }}", n=value, nouns=nouns) == text
