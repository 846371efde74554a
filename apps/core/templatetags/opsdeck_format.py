"""Dates and numbers in templates, written as apps/core/formatting.py writes them everywhere."""

from django import template

from .. import formatting

register = template.Library()

register.filter("local_time", formatting.local_time)
register.filter("number", formatting.number)


@register.filter("count")
def count_filter(value: int, nouns: str) -> str:
    """``{{ n|count:"hour" }}`` → "1 hour", "2 hours"; ``{{ n|count:"entry,entries" }}`` for other plurals; "—"
    for a missing value."""
    return formatting.count(value, *nouns.split(",")) if isinstance(value, int) else formatting.EMPTY
