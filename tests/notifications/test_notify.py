"""The one door for events: unknown names refused, every event audited, a job's end only when someone is told."""

import pytest

from apps.audit.models import AuditEvent
from apps.core.events import EVENT_TYPES, notify
from apps.notifications.models import Event

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
