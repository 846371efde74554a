"""Refused API requests are throttled per client address before authentication, and audited in bounded form."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from rest_framework.throttling import UserRateThrottle

from apps.accounts.tokens import token_create
from apps.audit.models import AuditEvent
from apps.audit.tasks import audit_refusals_flush
from project.schedule import SCHEDULE

JOBS = "/api/v1/quantum/jobs/"
LOGIN = "/accounts/login/"
AUDIT_WINDOW = 300


@pytest.fixture
def rates(settings, monkeypatch):
    """``rates(anon, user)``: set the API's throttle rates for this test."""

    def set_rates(anon: str, user: str = "5000/min") -> None:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"anon": anon, "user": user}}
        # DRF's user throttle copies its rates when imported; this is how tests of it change them.
        monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"anon": anon, "user": user})

    settings.AUDIT_REFUSAL_WINDOW_SECONDS = AUDIT_WINDOW
    return set_rates


@pytest.fixture
def clock():
    """Frozen at the start of the next hour, which also starts a throttle and an audit window."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    with time_machine.travel(start, tick=False) as traveller:
        yield traveller


def _refusal_events(since_id: int):
    return AuditEvent.objects.filter(id__gt=since_id, action__startswith="access.denied").order_by("id")


def _last_event_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _flush_refusals() -> str:
    return audit_refusals_flush.apply().get()


def _assert_throttled(response, most_seconds: int) -> None:
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= most_seconds
    body = response.json()
    assert body["code"] == "throttled"
    assert body["retry_after_seconds"] == int(response["Retry-After"])


@pytest.mark.django_db
def test_anonymous_flood_is_throttled_and_adds_only_a_few_audit_rows(client, rates, clock, django_assert_num_queries):
    rates(anon="100/hour")
    rows_before, last_id, start = AuditEvent.objects.count(), _last_event_id(), datetime.now(UTC)
    statuses = []
    # 10,000 requests over three audit windows, ten seconds apart per thousand; the throttle's hour spans them all.
    for window, requests in enumerate((4000, 3000, 3000)):
        clock.move_to(start + timedelta(seconds=window * AUDIT_WINDOW))
        for request in range(requests):
            if request and request % 1000 == 0:
                clock.shift(10)
            statuses.append(client.get(JOBS).status_code)
    assert statuses == [401] * 100 + [429] * 9900
    # Over the rate, a request is answered before authentication: not one database query.
    with django_assert_num_queries(0):
        throttled = client.get(JOBS)
    _assert_throttled(throttled, most_seconds=3600 - 2 * AUDIT_WINDOW)

    # Only each window's first refusal is written at once. A window is summarised once it closed
    # (and a grace period passed): the first now, the second closed only seconds ago.
    assert [event.action for event in _refusal_events(last_id)] == ["access.denied"] * 3
    assert "in 1 event." in _flush_refusals()
    clock.shift(AUDIT_WINDOW + 60)
    assert "in 2 events." in _flush_refusals()
    assert "in 0 events." in _flush_refusals()  # a later run writes nothing twice

    summaries = [event.changes for event in _refusal_events(last_id).filter(action="access.denied.summary")]
    assert [summary["count"] for summary in summaries] == [4000, 3000, 3001]
    assert sum(summary["statuses"].get("401", 0) for summary in summaries) == 100
    assert sum(summary["statuses"]["429"] for summary in summaries) == 9901
    first_window = datetime.fromisoformat(summaries[0]["window_start"])
    assert datetime.fromisoformat(summaries[0]["first"]) == first_window
    assert datetime.fromisoformat(summaries[0]["last"]) == first_window + timedelta(seconds=30)
    assert all(event.ip == "127.0.0.1" for event in _refusal_events(last_id))
    assert AuditEvent.objects.count() - rows_before <= 24


@pytest.mark.django_db
def test_bogus_bearer_flood_is_throttled_while_a_valid_token_keeps_its_own_limit(client, rates, clock, operator_user):
    rates(anon="20/hour", user="8/hour")
    secret = token_create(owner=operator_user, name="ci", scopes=["read"], expires_in_days=30).secret
    last_id = _last_event_id()
    bogus = {"HTTP_AUTHORIZATION": "Bearer odk_deadbeef_not-a-token"}
    statuses = [client.get(JOBS, **bogus).status_code for _ in range(60)]
    assert statuses == [401] * 20 + [429] * 40
    _assert_throttled(client.get(JOBS, **bogus), most_seconds=3600)
    _assert_throttled(client.get(JOBS), most_seconds=3600)

    valid = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    assert [client.get(JOBS, **valid).status_code for _ in range(8)] == [200] * 8
    _assert_throttled(client.get(JOBS, **valid), most_seconds=3600)  # the token's own (user) limit

    clock.shift(AUDIT_WINDOW + 60)
    _flush_refusals()
    events = list(_refusal_events(last_id))
    assert [(event.action, event.actor_username) for event in events] == [
        ("access.denied", ""),
        ("access.denied", "oscar-operator"),
        ("access.denied.summary", ""),
    ]
    assert events[2].changes["statuses"] == {"401": 20, "429": 42}
    assert events[1].changes["status"] == 429


@pytest.mark.django_db
def test_each_client_gets_its_own_events_and_an_ipv6_64_counts_as_one_client(client, rates, clock):
    rates(anon="5/hour")
    last_id = _last_event_id()
    for address in ("192.0.2.10", "192.0.2.11"):
        assert [client.get(JOBS, REMOTE_ADDR=address).status_code for _ in range(3)] == [401] * 3
    # Stepping through the addresses of one IPv6 /64 does not buy a new allowance.
    statuses = [client.get(JOBS, REMOTE_ADDR=f"2001:db8:0:1::{step:x}").status_code for step in range(1, 9)]
    assert statuses == [401] * 5 + [429] * 3
    assert client.get(JOBS, REMOTE_ADDR="2001:db8:0:2::1").status_code == 401  # another /64

    clock.shift(AUDIT_WINDOW + 60)
    _flush_refusals()
    summaries = {event.ip: event.changes for event in _refusal_events(last_id).filter(action="access.denied.summary")}
    assert {ip: summary["count"] for ip, summary in summaries.items()} == {
        "192.0.2.10": 3,
        "192.0.2.11": 3,
        "2001:db8:0:1::1": 8,
    }
    assert summaries["2001:db8:0:1::1"]["client"] == "2001:db8:0:1::/64"
    first_rows = _refusal_events(last_id).filter(action="access.denied")
    assert sorted(first_rows.values_list("ip", flat=True)) == [
        "192.0.2.10",
        "192.0.2.11",
        "2001:db8:0:1::1",
        "2001:db8:0:2::1",
    ]


@pytest.mark.django_db
def test_failed_sign_ins_are_still_recorded_one_row_each(client, rates, clock, operator_user):
    rates(anon="5/hour")
    for _ in range(20):
        client.get(JOBS)
    for attempt in range(3):
        client.post(LOGIN, {"username": operator_user.username, "password": f"wrong-{attempt}"})
    assert AuditEvent.objects.filter(action="auth.login.failed", object_repr=operator_user.username).count() == 3


def test_refusal_summaries_are_in_the_beat_schedule():
    [entry] = [entry for entry in SCHEDULE if entry.task == "maintenance.audit_refusals_flush"]
    assert entry.crontab == "*/5 * * * *"
