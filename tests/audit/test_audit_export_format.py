"""The CSV export PostgreSQL writes has the same columns and values as the events."""

import csv
import io
import json

import pytest
from django.test import RequestFactory

from apps.audit.export import EXPORT_FIELDS, export_chunks
from apps.audit.hashing import canonical_timestamp
from apps.audit.models import AuditEvent
from apps.audit.services import event_record

pytestmark = pytest.mark.django_db


def test_postgres_csv_export_matches_the_stored_events():
    request = RequestFactory().get("/", REMOTE_ADDR="2001:db8::7", HTTP_USER_AGENT='agent "quoted", with comma')
    first = event_record(action="test.one", changes={"b": 1, "a": ["x", "y"]}, request=request)
    second = event_record(action="test.two", object_repr="line\nbreak")
    content = b"".join(export_chunks(AuditEvent.objects.all(), "csv")).decode()
    rows = list(csv.reader(io.StringIO(content)))
    assert tuple(rows[0]) == EXPORT_FIELDS
    records = [dict(zip(EXPORT_FIELDS, row, strict=True)) for row in rows[1:]]
    assert [int(record["id"]) for record in records] == [first.id, second.id]
    assert records[0]["timestamp"] == canonical_timestamp(first.timestamp)
    assert records[0]["ip"] == "2001:db8::7"
    assert records[0]["user_agent"] == 'agent "quoted", with comma'
    assert json.loads(records[0]["changes"]) == {"b": 1, "a": ["x", "y"]}
    assert records[1]["object_repr"] == "line\nbreak"
    assert records[1]["ip"] == ""
    assert (records[1]["prev_hash"], records[1]["hash"]) == (first.hash, second.hash)


def test_export_of_a_filtered_queryset_has_only_its_rows():
    event_record(action="test.keep")
    event_record(action="test.drop")
    content = b"".join(export_chunks(AuditEvent.objects.filter(action="test.keep"), "csv")).decode()
    rows = list(csv.reader(io.StringIO(content)))[1:]
    assert [row[EXPORT_FIELDS.index("action")] for row in rows] == ["test.keep"]
