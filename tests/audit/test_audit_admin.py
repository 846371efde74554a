"""Audit trail in the admin: read-only for everyone, a readable diff, a cheap count, the verification banner."""

import pytest
from django.db import connection
from django.db.models import Q
from django.template import Context, Template
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.audit.choices import Outcome
from apps.audit.models import AuditEvent
from apps.audit.services import checkpoint_create, event_record
from apps.core.choices import MaintenanceStatus
from apps.core.formatting import local_time
from apps.core.models import MaintenanceRun
from apps.core.paginators import EstimatedCountPaginator
from apps.core.request_context import current_request_id

pytestmark = pytest.mark.django_db

CHANGELIST_URL = "/admin/audit/auditevent/"
VERIFY_TASK = "maintenance.audit_verify"
BANNER_TEXT = "Audit trail verification failed at"


@pytest.fixture
def events(operator_user):
    return [
        event_record(action="job.submitted", actor=operator_user, object_type="quantum.job", object_id="7"),
        event_record(
            action="schedule.changed",
            object_type="django_celery_beat.periodictask",
            object_id="3",
            object_repr="nightly backup",
            changes={
                "enabled": {"before": True, "after": False},
                "description": {"before": "old", "after": "<b>x</b>"},
            },
        ),
        event_record(action="auth.login.failed", outcome=Outcome.FAILURE, object_repr="mallory"),
    ]


@pytest.fixture
def superuser_client(client, superuser, otp_login):
    otp_login(client, superuser)
    return client


def _listed_ids(response) -> set[int]:
    return {event.id for event in response.context["cl"].result_list}


def test_changelist_lists_events_without_add_button_or_delete_action(superuser_client, events):
    response = superuser_client.get(CHANGELIST_URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert {event.id for event in events} <= _listed_ids(response)
    assert "nightly backup" in page
    assert "/admin/audit/auditevent/add/" not in page
    assert "delete_selected" not in page
    assert 'name="action"' not in page
    assert response.context["cl"].show_full_result_count is False


def test_changelist_filters_by_action_outcome_actor_and_search(superuser_client, events, operator_user):
    submitted, changed, failed = events
    assert _listed_ids(superuser_client.get(CHANGELIST_URL, {"action": "schedule.changed"})) == {changed.id}
    assert _listed_ids(superuser_client.get(CHANGELIST_URL, {"outcome__exact": "failure"})) == {failed.id}
    assert _listed_ids(superuser_client.get(CHANGELIST_URL, {"actor__id__exact": operator_user.id})) == {submitted.id}
    assert _listed_ids(superuser_client.get(CHANGELIST_URL, {"q": "nightly"})) == {changed.id}
    by_name = superuser_client.get(CHANGELIST_URL, {"q": "oscar-operator"})
    expected = AuditEvent.objects.filter(
        Q(actor_username="oscar-operator") | Q(object_repr__startswith="oscar-operator")
    )
    assert submitted.id in _listed_ids(by_name)
    assert _listed_ids(by_name) == set(expected.values_list("id", flat=True))


def test_changelist_finds_the_events_of_one_request(superuser_client, events):
    token = current_request_id.set("req-4f2a9c")
    try:
        in_request = event_record(action="job.cancelled", object_type="quantum.job", object_id="7")
    finally:
        current_request_id.reset(token)
    assert _listed_ids(superuser_client.get(CHANGELIST_URL, {"q": "req-4f2a9c"})) == {in_request.id}


def test_action_filter_lists_each_recorded_action_once(superuser_client, events):
    response = superuser_client.get(CHANGELIST_URL)
    action_filter = next(spec for spec in response.context["cl"].filter_specs if spec.parameter_name == "action")
    actions = [value for value, _ in action_filter.lookup_choices]
    assert actions == sorted(set(AuditEvent.objects.values_list("action", flat=True)))
    assert actions.count("job.submitted") == 1


def test_change_view_shows_the_changes_as_an_escaped_table(superuser_client, events):
    changed = events[1]
    response = superuser_client.get(f"{CHANGELIST_URL}{changed.id}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<table class="audit-changes">' in page
    assert "<th>Field</th><th>Before</th><th>After</th>" in page
    assert "<tr><td>enabled</td><td>true</td><td>false</td></tr>" in page
    assert "<tr><td>description</td><td>old</td><td>&lt;b&gt;x&lt;/b&gt;</td></tr>" in page
    assert "<b>x</b>" not in page
    assert changed.hash in page
    assert changed.prev_hash in page
    assert 'name="_save"' not in page


def test_change_view_of_a_created_object_shows_the_new_values(superuser_client):
    created = event_record(action="schedule.created", changes={"after": {"name": "nightly", "enabled": True}})
    page = superuser_client.get(f"{CHANGELIST_URL}{created.id}/change/").content.decode()
    assert "<tr><td>name</td><td>—</td><td>nightly</td></tr>" in page


def test_changing_adding_or_deleting_an_event_is_refused(superuser_client, events):
    event = events[0]
    change = superuser_client.post(f"{CHANGELIST_URL}{event.id}/change/", {"action": "forged", "outcome": "success"})
    assert change.status_code == 403
    assert superuser_client.get(f"{CHANGELIST_URL}add/").status_code == 403
    assert superuser_client.post(f"{CHANGELIST_URL}{event.id}/delete/", {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.action == "job.submitted"
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.parametrize(
    ("username", "status"), [("admin_user", 200), ("compliance_user", 200), ("operator_user", 403)]
)
def test_only_audit_reader_roles_see_the_audit_trail_in_the_admin(client, request, username, status, events, otp_login):
    user = request.getfixturevalue(username)
    user.is_staff = True
    user.save()
    otp_login(client, user)
    assert client.get(CHANGELIST_URL).status_code == status
    assert ("/admin/audit/" in client.get("/admin/").content.decode()) is (status == 200)


def test_checkpoints_and_archives_are_listed_read_only(superuser_client, events):
    checkpoint = checkpoint_create()
    response = superuser_client.get("/admin/audit/auditcheckpoint/")
    assert response.status_code == 200
    assert checkpoint.head_hash in response.content.decode()
    assert "/admin/audit/auditcheckpoint/add/" not in response.content.decode()
    assert superuser_client.get("/admin/audit/auditcheckpoint/add/").status_code == 403
    assert superuser_client.post(f"/admin/audit/auditcheckpoint/{checkpoint.id}/change/", {}).status_code == 403
    assert superuser_client.get("/admin/audit/auditarchive/").status_code == 200
    assert superuser_client.get("/admin/audit/auditarchive/add/").status_code == 403


class EagerEstimatePaginator(EstimatedCountPaginator):
    estimate_above = 0  # the test table is small: estimate it anyway


def test_unfiltered_count_is_estimated_without_counting_rows(events):
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditevent")
    with CaptureQueriesContext(connection) as queries:
        count = EagerEstimatePaginator(AuditEvent.objects.order_by("-id"), 100).count
    assert count == AuditEvent.objects.count()
    assert "pg_class" in queries[0]["sql"]
    assert not any("COUNT(" in query["sql"].upper() for query in queries)


def test_filtered_count_is_exact(events):
    filtered = AuditEvent.objects.filter(action="job.submitted")
    with CaptureQueriesContext(connection) as queries:
        assert EagerEstimatePaginator(filtered, 100).count == 1
    assert any("COUNT(" in query["sql"].upper() for query in queries)
    assert not any("pg_class" in query["sql"] for query in queries)


def _event_counts(queries) -> list[str]:
    return [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "audit_auditevent" in q["sql"]]


def test_unfiltered_changelist_does_not_count_the_events(superuser_client, events, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "estimate_above", 0)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditevent")
    with CaptureQueriesContext(connection) as unfiltered:
        assert superuser_client.get(CHANGELIST_URL).status_code == 200
    assert _event_counts(unfiltered) == []
    with CaptureQueriesContext(connection) as filtered:
        response = superuser_client.get(CHANGELIST_URL, {"outcome__exact": "failure"})
    assert len(_event_counts(filtered)) == 1
    assert response.context["cl"].result_count == 1


def _verify_run(status: str, message: str = "") -> MaintenanceRun:
    return MaintenanceRun.objects.create(
        task_name=VERIFY_TASK, status=status, message=message, finished_at=timezone.now()
    )


def test_banner_shows_when_the_latest_verification_failed(superuser_client, admin_user):
    _verify_run(MaintenanceStatus.SUCCEEDED, "Verified 10 events")
    failed = _verify_run(MaintenanceStatus.FAILED, "AuditError: Audit chain broken at event #7: <content> changed")
    for url in ("/admin/", "/admin/core/maintenancerun/", CHANGELIST_URL):
        page = superuser_client.get(url).content.decode()
        assert f"{BANNER_TEXT} {local_time(failed.finished_at)}:" in page
        assert "Audit chain broken at event #7: &lt;content&gt; changed" in page
        assert "| Opsdeck</title>" in page


def test_banner_is_gone_once_verification_succeeds_again(superuser_client):
    _verify_run(MaintenanceStatus.FAILED, "Audit chain broken")
    _verify_run(MaintenanceStatus.SUCCEEDED, "Verified 10 events")
    page = superuser_client.get("/admin/").content.decode()
    assert BANNER_TEXT not in page
    assert "| Opsdeck</title>" in page


def test_failures_of_other_maintenance_tasks_show_no_banner(superuser_client):
    MaintenanceRun.objects.create(task_name="maintenance.audit_checkpoint", status=MaintenanceStatus.FAILED)
    assert BANNER_TEXT not in superuser_client.get("/admin/").content.decode()


def test_login_page_shows_no_banner_to_anonymous_visitors(client):
    _verify_run(MaintenanceStatus.FAILED, "Audit chain broken")
    page = client.get("/admin/login/", follow=True).content.decode()
    assert BANNER_TEXT not in page
    assert "Sign in · Opsdeck</title>" in page


def test_banner_costs_one_query(superuser):
    _verify_run(MaintenanceStatus.FAILED, "Audit chain broken")
    request = RequestFactory().get("/admin/")
    request.user = superuser
    template = Template("{% load audit_status %}{% audit_verify_banner %}")
    with CaptureQueriesContext(connection) as queries:
        html = template.render(Context({"request": request}))
    assert BANNER_TEXT in html
    assert len(queries) == 1
