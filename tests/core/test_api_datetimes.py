"""Hostile datetimes in every datetime parameter of the API (and the audit CLI): a 400 naming the parameter,
never a 500 from PostgreSQL or a Python overflow."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.accounts.tokens import token_create
from apps.audit.services import event_record
from apps.compliance.models import Report
from tests.mfa import sudo_force_login, totp_device_create

pytestmark = pytest.mark.django_db

EVENTS_URL = "/api/v1/audit/events/"
EXPORT_URL = "/api/v1/audit/events/export/"
JOBS_URL = "/api/v1/quantum/jobs/"
REPORTS_URL = "/api/v1/compliance/reports/"

# (url, parameter) of every datetime query parameter; the export also gets ?format=jsonl.
QUERY_PARAMETERS = [
    (EVENTS_URL, "since"),
    (EVENTS_URL, "until"),
    (EXPORT_URL, "since"),
    (EXPORT_URL, "until"),
    (JOBS_URL, "created_after"),
    (JOBS_URL, "created_before"),
]
# (value, what the message says): offsets PostgreSQL refuses, and instants Python cannot convert to UTC.
HOSTILE = [
    ("0400-08-30T15:09:13+16:09", "offset +16:09 is out of range"),
    ("0320-06-27T20:37:31-20:33", "offset -20:33 is out of range"),
    ("2025-01-31T00:00:00+14:01", "offset +14:01 is out of range"),
    ("2025-01-31T00:00:00-23:59", "offset -23:59 is out of range"),
    ("0001-01-01T00:00:00+00:01", "between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z"),
    ("9999-12-31T23:59:59-05:00", "between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z"),
    ("2025-13-01T00:00:00Z", "Enter an ISO 8601 date/time"),
]
HOSTILE_IDS = ["plus-16-09", "minus-20-33", "plus-14-01", "minus-23-59", "before-year-1", "after-year-9999", "month-13"]


@pytest.fixture
def admin_token(api_client, admin_user):
    """An administrator's read token: admins may read both the audit trail and every quantum job."""
    totp_device_create(admin_user)  # an administrator's token is suspended without a second factor
    secret = token_create(owner=admin_user, name="probe", scopes=["read"], expires_in_days=30).secret
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api_client


def _query(url: str, parameter: str, value: str) -> dict:
    return {parameter: value, **({"format": "jsonl"} if url == EXPORT_URL else {})}


def _assert_names(response, parameter: str, says: str) -> None:
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert body["code"] == "invalid"
    assert body["detail"].startswith(f"{parameter}: ")
    assert says in body["errors"][parameter][0]


@pytest.mark.parametrize(("value", "says"), HOSTILE, ids=HOSTILE_IDS)
@pytest.mark.parametrize(("url", "parameter"), QUERY_PARAMETERS, ids=[f"{u}?{p}" for u, p in QUERY_PARAMETERS])
def test_hostile_datetime_query_parameter_is_a_400_naming_it(admin_token, url, parameter, value, says):
    event_record(action="test.datetimes")
    response = admin_token.get(url, _query(url, parameter, value))
    _assert_names(response, parameter, says)


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00Z", "2025-01-31T00:00:00+14:00", "2025-01-31T00:00:00-12:00"])
@pytest.mark.parametrize(("url", "parameter"), QUERY_PARAMETERS, ids=[f"{u}?{p}" for u, p in QUERY_PARAMETERS])
def test_datetimes_at_the_limits_are_accepted(admin_token, url, parameter, value):
    response = admin_token.get(url, _query(url, parameter, value))
    assert response.status_code == 200, response.content[:300]


@pytest.mark.parametrize(("value", "says"), HOSTILE[:-1], ids=HOSTILE_IDS[:-1])
@pytest.mark.parametrize("parameter", ["period_start", "period_end"])
def test_hostile_report_period_is_a_400_naming_it_and_creates_nothing(
    api_client, compliance_user, parameter, value, says
):
    sudo_force_login(api_client, compliance_user)
    end = datetime.now(UTC).replace(microsecond=0)
    body = {"kind": "mfa_coverage", "format": "json", "period_start": (end - timedelta(days=7)).isoformat()}
    body["period_end"] = end.isoformat()

    response = api_client.post(REPORTS_URL, body | {parameter: value}, format="json")

    _assert_names(response, parameter, says)
    assert not Report.objects.exists()


def test_audit_archive_refuses_a_hostile_before_naming_it(tmp_path):
    with pytest.raises(CommandError, match=r"--before '2020-01-01T00:00:00\+16:00': The UTC offset \+16:00"):
        call_command(
            "audit",
            "archive",
            "--before",
            "2020-01-01T00:00:00+16:00",
            "--output",
            str(tmp_path / "a.jsonl.gz"),
            stdout=StringIO(),
        )
    assert not (tmp_path / "a.jsonl.gz").exists()


@pytest.mark.parametrize(
    ("start", "says"),
    [("9999-12-01", "The period ends before it starts"), ("0001-01-01", "the longest allowed is")],
)
def test_report_page_with_the_last_possible_day_is_a_form_error(client, compliance_user, start, says):
    sudo_force_login(client, compliance_user)

    response = client.post(
        "/compliance/",
        {"kind": "usage", "format": "pdf", "start_date": start, "end_date": "9999-12-31"},
    )

    assert response.status_code == 400
    assert says in response.content.decode()
    assert not Report.objects.exists()
