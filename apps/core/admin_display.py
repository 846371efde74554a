"""Read-only admin display: stored JSON (reports, metrics, migrations) as tables people can read, and date-times
and counts as the rest of the portal writes them."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import capfirst

from .formatting import EMPTY, local_time, number


def _formatter(field) -> Callable | None:
    """How the portal writes this field's values, where the admin's default differs: date-times in the viewer's
    zone, counts with thousands separators (not ids, not choices)."""
    if isinstance(field, models.DateTimeField):
        return local_time
    if isinstance(field, models.IntegerField) and not (field.primary_key or field.choices):
        return number
    return None


@cache
def formatted_column(model: type[models.Model], name: str) -> Callable | str:
    """For a date-time or count field of ``model``: a column (or read-only field) showing it as the portal's pages
    do (apps/core/formatting.py), sorted by the field and named after it (its CSS class stays ``field-<name>``);
    ``name`` itself for anything else. Cached, so that one field always gets the same column (the admin compares
    them)."""
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return name
    formatter = _formatter(field)
    if formatter is None:
        return name

    def column(obj) -> SafeString | str:
        return formatter(getattr(obj, name))

    column.__name__ = name
    return admin.display(description=capfirst(field.verbose_name), ordering=name)(column)


def _label(key) -> str:
    """``tables_compared`` → "Tables compared": stored keys read as words, not as identifiers."""
    text = str(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _scalar(value) -> str:
    if value is None:
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.6g}"
    return str(value)


def json_display(value, *, headers: tuple[str, str] | None = None, label_keys: bool = True) -> SafeString | str:
    """A JSON value as HTML: an object as a key/value table, a list of plain values as one line, a list of objects
    as a table with a column per key, nested values as nested tables; "—" when there is nothing.

    ``headers`` names the two columns of an object's table (e.g. ("App", "Latest migration")); ``label_keys=False``
    keeps keys as stored, for keys that are names (app labels, table names) rather than words.
    """
    if value in (None, "", [], {}):
        return EMPTY
    if isinstance(value, dict):
        return _object_table(value, headers=headers, label_keys=label_keys)
    if isinstance(value, list):
        if all(isinstance(item, dict) for item in value):
            return _records_table(value)
        if not any(isinstance(item, dict | list) for item in value):
            return ", ".join(_scalar(item) for item in value)
        return format_html('<ol class="json-list">{}</ol>', _items(value))
    return _scalar(value)


def _items(values: list) -> SafeString:
    return format_html_join("", "<li>{}</li>", ((json_display(item),) for item in values))


def _object_table(value: dict, *, headers: tuple[str, str] | None, label_keys: bool) -> SafeString:
    head = format_html("<thead><tr><th>{}</th><th>{}</th></tr></thead>", *headers) if headers else ""
    rows = format_html_join(
        "",
        '<tr><th scope="row">{}</th><td>{}</td></tr>',
        ((_label(key) if label_keys else key, json_display(item)) for key, item in value.items()),
    )
    return format_html('<table class="json-table">{}<tbody>{}</tbody></table>', head, rows)


def _records_table(records: list[dict]) -> SafeString:
    columns = list(dict.fromkeys(key for record in records for key in record))
    head = format_html_join("", '<th scope="col">{}</th>', ((_label(column),) for column in columns))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (format_html_join("", "<td>{}</td>", ((json_display(record.get(column)),) for column in columns)),)
            for record in records
        ),
    )
    return format_html('<table class="json-table"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', head, body)
