"""manage.py maintenance: on, off, status, windows; a clear line and a non-zero exit for bad times."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.readonly.models import MaintenanceWindow
from apps.readonly.services import maintenance_mode_status
from tests.helpers import child_database_url, clean_environment, manage

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command("maintenance", *args, stdout=out)
    return out.getvalue()


def test_on_status_off_from_the_command_line_are_audited():
    said = _run("on", "--message", "Upgrading PostgreSQL.", "--until", "2h")
    assert said.startswith("Maintenance mode is ON (switch) until ")
    assert said.strip().endswith(": Upgrading PostgreSQL.")
    status = maintenance_mode_status()
    assert status.active
    assert timedelta(minutes=119) < status.until - timezone.now() <= timedelta(hours=2)

    body = json.loads(_run("status", "--json"))
    assert (body["active"], body["message"], body["source"]) == (True, "Upgrading PostgreSQL.", "switch")
    assert _run("off").strip() == "Maintenance mode is off."
    events = AuditEvent.objects.filter(action__startswith="maintenance.").order_by("id")
    assert [(event.action, event.actor_id, event.changes["via"]) for event in events] == [
        ("maintenance.enabled", None, "command line"),
        ("maintenance.disabled", None, "command line"),
    ]


def test_an_iso_time_without_an_offset_is_in_the_portals_time_zone():
    _run("on", "--until", "2099-01-02T03:04")
    until = maintenance_mode_status().until
    assert timezone.localtime(until).strftime("%Y-%m-%d %H:%M") == "2099-01-02 03:04"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("on", "--until", "2001-01-01T00:00Z"), "until (2001-01-01T00:00:00Z) has already passed"),
        (("on", "--until", "tomorrow"), "--until 'tomorrow' is not a time"),
        (("on", "--until", "2030-02-30T00:00Z"), "--until '2030-02-30T00:00Z' is not a time"),
        (("schedule", "--start", "3h", "--end", "2h"), "must come after the start"),
        (("schedule", "--start", "2001-01-01T00:00Z", "--end", "2001-01-01T01:00Z"), "has already passed"),
        (("cancel-window", "424242"), "There is no maintenance window #424242."),
    ],
)
def test_bad_input_is_one_clear_error_and_changes_nothing(args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _run(*args)
    assert not maintenance_mode_status().active
    assert not MaintenanceWindow.objects.exists()


def test_windows_are_scheduled_listed_and_cancelled():
    said = _run("schedule", "--start", "1h", "--end", "3h", "--message", "Moving racks.")
    window = MaintenanceWindow.objects.get()
    assert said.startswith(f"Planned window #{window.pk}: from ")
    assert "Moving racks." in _run("windows")
    assert f"Planned: window #{window.pk}" in _run("status")
    assert _run("cancel-window", str(window.pk)).strip() == f"Cancelled window #{window.pk}."
    assert _run("windows").strip() == "No maintenance window is planned."


def test_the_command_exits_non_zero_with_one_line_on_a_past_end():
    environment = clean_environment(
        DJANGO_SETTINGS_MODULE="project.settings.test",
        TEST_DATABASE_URL=child_database_url(),
        TEST_REDIS_URL=settings.REDIS_URL,
    )
    result = manage("maintenance", "on", "--until", "2001-01-01T00:00Z", environment=environment)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1  # one line, no traceback
    assert result.stderr.startswith("CommandError: until (2001-01-01T00:00:00Z) has already passed")
