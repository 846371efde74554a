"""Audit trail API: superuser-only reading, filters, cursor pagination, streamed CSV/JSONL export."""

import csv
import io
import json
import warnings

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from django_otp import DEVICE_ID_SESSION_KEY

from apps.audit.choices import Outcome
from apps.audit.export import EXPORT_FIELDS
from apps.audit.models import AuditEvent
from apps.audit.services import event_record
from tests.mfa import totp_device_for

pytestmark = pytest.mark.django_db

EVENTS_URL = "/api/v1/audit/events/"
EXPORT_URL = "/api/v1/audit/events/export/"


def _assert_error_shape(response, status: int, code: str):
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


@pytest.fixture
def events(admin_user, operator_user):
    """Four events of different kinds, recorded in this order (so with increasing timestamps)."""
    return {
        "failed_login": event_record(
            action="auth.login.failed",
            outcome=Outcome.FAILURE,
            changes={"username": "mallory"},
            object_type="accounts.user",
            object_repr="mallory",
        ),
        "login": event_record(action="auth.login.succeeded", actor=operator_user, obj=operator_user),
        "submitted": event_record(
            action="job.submitted", actor=admin_user, object_type="quantum.job", object_id="42", object_repr="job 42"
        ),
        "cancel_denied": event_record(
            action="job.cancelled",
            actor=admin_user,
            outcome=Outcome.DENIED,
            object_type="quantum.job",
            object_id="43",
            object_repr="job 43",
        ),
    }


def _ids(body) -> list[int]:
    return [event["id"] for event in body["results"]]


def test_superuser_lists_events_newest_first_with_cursor_pagination(api_client, superuser):
    recorded = [event_record(action=f"test.step.{n}", object_repr=f"step {n}") for n in range(5)]
    api_client.force_authenticate(superuser)

    first = api_client.get(EVENTS_URL, {"action_prefix": "test.step.", "page_size": 2}).json()
    assert "count" not in first
    assert first["previous"] is None
    seen = _ids(first)
    following = first["next"]
    while following:
        page = api_client.get(following).json()
        assert page["previous"]
        assert len(page["results"]) <= 2
        seen += _ids(page)
        following = page["next"]

    assert seen == [event.id for event in reversed(recorded)]


def test_event_shows_its_hashes_and_actor(api_client, superuser, events):
    api_client.force_authenticate(superuser)
    login = events["login"]
    body = api_client.get(f"{EVENTS_URL}{login.id}/").json()
    assert body["hash"] == login.hash
    assert body["prev_hash"] == events["failed_login"].hash
    assert body["actor"] == login.actor_id
    assert body["actor_username"] == "oscar-operator"
    assert body["action"] == "auth.login.succeeded"
    assert body["object_type"] == "accounts.user"


def test_page_size_over_the_maximum_is_refused_naming_the_limit(api_client, superuser, settings):
    settings.API_MAX_PAGE_SIZE = 20
    api_client.force_authenticate(superuser)
    body = _assert_error_shape(api_client.get(EVENTS_URL, {"page_size": 21}), 400, "invalid")
    assert body["detail"] == "page_size: Must be a whole number from 1 to 20."


@pytest.mark.parametrize("username", ["admin_user", "compliance_user"])
def test_administrators_and_compliance_officers_read_the_audit_trail(api_client, request, username, events):
    api_client.force_authenticate(request.getfixturevalue(username))
    assert api_client.get(EVENTS_URL).status_code == 200
    assert api_client.get(f"{EVENTS_URL}{events['login'].id}/").status_code == 200


@pytest.mark.parametrize("username", ["operator_user", "viewer_user", "outsider_user"])
def test_other_roles_cannot_read_the_audit_trail(api_client, request, username, events):
    api_client.force_authenticate(request.getfixturevalue(username))
    for url in (EVENTS_URL, f"{EVENTS_URL}{events['login'].id}/", f"{EXPORT_URL}?format=csv"):
        body = _assert_error_shape(api_client.get(url), 403, "permission_denied")
        assert body["detail"] == "Only administrators and compliance officers may read the audit trail."


def test_anonymous_cannot_read_the_audit_trail(api_client):
    _assert_error_shape(api_client.get(EVENTS_URL), 401, "not_authenticated")


def test_denied_reads_are_themselves_audited(api_client, operator_user):
    api_client.force_authenticate(operator_user)
    api_client.get(EVENTS_URL)
    denied = AuditEvent.objects.get(action="access.denied")
    assert denied.actor_username == "oscar-operator"
    assert denied.changes["path"] == EVENTS_URL


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"action": "job.submitted"}, {"submitted"}),
        ({"action": "job"}, set()),
        ({"action_prefix": "job."}, {"submitted", "cancel_denied"}),
        ({"action_prefix": "auth.login."}, {"failed_login", "login"}),
        ({"actor": "oscar-operator"}, {"login"}),
        ({"actor": "alice-admin"}, {"submitted", "cancel_denied"}),
        ({"object_type": "quantum.job"}, {"submitted", "cancel_denied"}),
        ({"object_type": "quantum.job", "object_id": "43"}, {"cancel_denied"}),
        ({"outcome": "failure"}, {"failed_login"}),
        ({"outcome": "denied"}, {"cancel_denied"}),
    ],
    ids=lambda value: "&".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else None,
)
def test_filters_narrow_the_list(api_client, superuser, events, params, expected):
    api_client.force_authenticate(superuser)
    body = api_client.get(EVENTS_URL, params).json()
    assert set(_ids(body)) == {events[name].id for name in expected}


def test_since_is_inclusive_and_until_exclusive(api_client, superuser, events):
    api_client.force_authenticate(superuser)
    params = {"since": events["login"].timestamp.isoformat(), "until": events["cancel_denied"].timestamp.isoformat()}
    body = api_client.get(EVENTS_URL, params).json()
    assert _ids(body) == [events["submitted"].id, events["login"].id]


@pytest.mark.parametrize("name", ["since", "until"])
def test_invalid_time_is_refused_naming_the_parameter(api_client, superuser, name):
    api_client.force_authenticate(superuser)
    body = _assert_error_shape(api_client.get(EVENTS_URL, {name: "yesterday"}), 400, "invalid")
    assert body["detail"].startswith(f"{name}: ")
    assert "ISO 8601" in body["detail"]


def test_unknown_outcome_is_refused(api_client, superuser):
    api_client.force_authenticate(superuser)
    body = _assert_error_shape(api_client.get(EVENTS_URL, {"outcome": "maybe"}), 400, "invalid")
    assert body["detail"].startswith("outcome: ")


def test_api_root_links_the_audit_events(api_client, superuser):
    api_client.force_authenticate(superuser)
    assert api_client.get("/api/v1/").json()["audit-events"].endswith(EVENTS_URL)


def _export(user, params: dict) -> tuple[object, bytes]:
    """GET the export through the ASGI handler and read its streamed body asynchronously."""

    device = totp_device_for(user)  # superusers need an OTP-verified session

    async def scenario():
        client = AsyncClient()
        await client.aforce_login(user)
        session = await client.asession()
        await session.aset(DEVICE_ID_SESSION_KEY, device.persistent_id)
        await session.asave()
        response = await client.get(EXPORT_URL, params)
        if not response.streaming:
            return response, response.content
        # Read as the ASGI handler reads it; Django warns when it must buffer a sync iterator whole.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return response, b"".join([chunk async for chunk in response])

    return async_to_sync(scenario)()


def _range(events) -> dict:
    return {"since": events["login"].timestamp.isoformat(), "until": events["cancel_denied"].timestamp.isoformat()}


def test_csv_export_of_a_range_has_exactly_its_rows(superuser, events):
    response, content = _export(superuser, {"format": "csv", **_range(events)})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    since, until = events["login"].timestamp, events["cancel_denied"].timestamp
    assert response["Content-Disposition"] == (
        f'attachment; filename="audit-events-{since:%Y%m%dT%H%M%SZ}-{until:%Y%m%dT%H%M%SZ}.csv"'
    )
    rows = list(csv.reader(io.StringIO(content.decode())))
    assert tuple(rows[0]) == EXPORT_FIELDS
    records = [dict(zip(EXPORT_FIELDS, row, strict=True)) for row in rows[1:]]
    assert [int(record["id"]) for record in records] == [events["login"].id, events["submitted"].id]
    assert records[0]["hash"] == events["login"].hash
    assert records[1]["prev_hash"] == events["login"].hash
    assert records[1]["object_id"] == "42"
    # The event before the range appears only as the first row's link; the one after not at all.
    assert {record["hash"] for record in records} == {events["login"].hash, events["submitted"].hash}
    assert events["cancel_denied"].hash not in content.decode()


def test_jsonl_export_of_a_range_has_exactly_its_rows(superuser, events):
    response, content = _export(superuser, {"format": "jsonl", **_range(events)})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"].endswith('.jsonl"')
    records = [json.loads(line) for line in content.decode().splitlines()]
    assert [record["id"] for record in records] == [events["login"].id, events["submitted"].id]
    assert set(records[0]) == set(EXPORT_FIELDS)
    assert records[1]["hash"] == events["submitted"].hash
    assert records[0]["actor_username"] == "oscar-operator"
    # The event before the range appears only as the first row's link; the one after not at all.
    assert {record["hash"] for record in records} == {events["login"].hash, events["submitted"].hash}
    assert events["cancel_denied"].hash not in content.decode()


def test_export_applies_the_list_filters(superuser, events):
    response, content = _export(superuser, {"format": "jsonl", "action_prefix": "job.", "outcome": "denied"})
    assert response.status_code == 200
    assert [json.loads(line)["id"] for line in content.decode().splitlines()] == [events["cancel_denied"].id]
    assert response["Content-Disposition"].startswith('attachment; filename="audit-events-start-')


@pytest.mark.parametrize("params", [{"format": "xml"}, {"format": "json"}, {}], ids=["xml", "json", "missing"])
def test_export_with_a_bad_format_is_refused_in_json(superuser, params):
    response, content = _export(superuser, params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = json.loads(content)
    assert body["detail"] == "format must be one of csv, jsonl"
    assert body["code"] == "invalid"


def test_export_with_a_bad_time_is_refused_in_json(superuser):
    response, content = _export(superuser, {"format": "csv", "since": "last tuesday"})
    assert response.status_code == 400
    assert json.loads(content)["detail"].startswith("since: ")
