"""The one door for events: unknown names refused, every event audited, a job's end only when someone is told."""

import time

import pytest

from apps.audit.models import AuditEvent
from apps.core.events import EVENT_TYPES, notify
from apps.notifications import routing
from apps.notifications.models import Event, NotificationPreference
from apps.notifications.preferences import preferences_save

pytestmark = pytest.mark.django_db


def test_unknown_event_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match=r"Unknown event 'backup\.exploded'.*backup\.failed"):
        notify("backup.exploded", data={})


def test_rare_event_is_recorded_in_the_audit_trail_even_when_nobody_is_told(settings):
    notify("backup.stale", data={"window_hours": 26}, summary="No verified backup for 26 hours")

    event = AuditEvent.objects.get(action="notification.backup.stale")
    assert "No verified backup for 26 hours" in event.changes_text


def test_job_end_nobody_is_told_of_is_neither_stored_nor_audited(operator_user):
    notify("job.completed", data={"job_id": 1}, user=operator_user)

    assert not Event.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="notification.").exists()


def test_every_event_names_roles_that_may_be_told():
    assert all(event.roles for event in EVENT_TYPES.values())


def test_job_ends_nobody_wants_cost_no_query_once_the_snapshot_is_taken(operator_user, django_assert_num_queries):
    notify("job.completed", data={"job_id": 1}, user=operator_user)  # takes the snapshot

    with django_assert_num_queries(0):
        for job_id in range(2, 50):
            notify("job.completed", data={"job_id": job_id}, user=operator_user)


def test_a_choice_saved_in_this_process_is_seen_by_the_next_job_end(operator_user):
    notify("job.completed", data={"job_id": 1}, user=operator_user)  # a snapshot in which nobody wants it
    preferences_save(user=operator_user, choices={"job.completed": True})

    notify("job.completed", data={"job_id": 2}, user=operator_user)

    assert Event.objects.get().data == {"job_id": 2}


def test_a_snapshot_older_than_its_refresh_time_is_taken_again(operator_user, monkeypatch):
    notify("job.completed", data={"job_id": 1}, user=operator_user)
    # As a choice saved by another process: the row appears without this process's signals.
    NotificationPreference.objects.bulk_create(
        [NotificationPreference(user=operator_user, event="job.completed", email=True)]
    )
    notify("job.completed", data={"job_id": 2}, user=operator_user)
    assert not Event.objects.exists(), "within the refresh time, the snapshot still says nobody"

    later = time.monotonic() + routing.REFRESH_SECONDS + 1
    monkeypatch.setattr(routing.time, "monotonic", lambda: later)
    notify("job.completed", data={"job_id": 3}, user=operator_user)

    assert Event.objects.get().data == {"job_id": 3}
