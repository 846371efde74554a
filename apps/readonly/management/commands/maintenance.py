"""manage.py maintenance on|off|status|schedule|cancel-window: maintenance (read-only) mode from a portal host."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.core.errors import ApplicationError
from apps.core.formatting import date_time_text
from apps.readonly.services import (
    MaintenanceStatus,
    maintenance_mode_disable,
    maintenance_mode_enable,
    maintenance_mode_status,
    maintenance_window_cancel,
    maintenance_window_schedule,
    maintenance_windows_planned,
)

DURATION = re.compile(r"^\+?(\d+)\s*([mhd])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days"}
TIME_HELP = (
    "an ISO 8601 time (2026-12-07T22:00Z; without an offset, the portal's time zone) "
    "or a duration from now (90m, 2h, 1d)"
)


def parse_when(text: str, *, name: str, now: datetime | None = None) -> datetime:
    """``text`` as an aware time: ISO 8601 (the portal's zone when no offset is given) or "90m"/"2h"/"1d" from now.

    Raises CommandError naming the option and the accepted shapes.
    """
    text = text.strip()
    now = now or timezone.now()
    if match := DURATION.match(text):
        return now + timedelta(**{UNITS[match.group(2)]: int(match.group(1))})
    try:
        value = parse_datetime(text)
    except ValueError:
        value = None
    if value is None:
        raise CommandError(f"{name} {text!r} is not a time: give {TIME_HELP}.")
    return timezone.make_aware(value) if timezone.is_naive(value) else value


def status_text(status: MaintenanceStatus) -> str:
    if status.active:
        end = f"until {date_time_text(status.until)}" if status.until else "until turned off"
        by = f" by {status.changed_by}" if status.changed_by else ""
        lines = [f"Maintenance mode is ON ({status.source}{by}) {end}: {status.message}"]
    else:
        lines = ["Maintenance mode is off."]
    lines += [
        f"Planned: window #{window.id} from {date_time_text(window.starts_at)} to {date_time_text(window.ends_at)}"
        f": {window.message}"
        for window in status.upcoming
    ]
    return "\n".join(lines)


class Command(BaseCommand):
    help = (
        "Maintenance (read-only) mode: writes answer 503, workers take no new jobs, scheduled housekeeping goes on. "
        "on [--message M] [--until T] | off | status [--json] | schedule --start T --end T [--message M] | "
        "cancel-window ID"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="on|off|status|schedule|cancel-window")
        on = actions.add_parser("on", help="Turn maintenance mode on (or change its message or end).")
        on.add_argument("--message", default="", help="Shown on the banner and in every refused write.")
        on.add_argument("--until", default="", help=f"When it ends by itself: {TIME_HELP}.")
        actions.add_parser("off", help="Turn maintenance mode off; held jobs are sent again.")
        status = actions.add_parser("status", help="Say whether it is on, until when, and the planned windows.")
        status.add_argument("--json", action="store_true", help="Print the status as JSON.")
        schedule = actions.add_parser("schedule", help="Plan a window: on by itself from --start to --end.")
        schedule.add_argument("--start", required=True, help=TIME_HELP)
        schedule.add_argument("--end", required=True, help=TIME_HELP)
        schedule.add_argument("--message", default="")
        cancel = actions.add_parser("cancel-window", help="Cancel a planned (or running) window.")
        cancel.add_argument("window_id", type=int)
        actions.add_parser("windows", help="List the windows planned or running.")

    def handle(self, *args, action: str, **options) -> None:
        try:
            getattr(self, "_" + action.replace("-", "_"))(**options)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None

    def _on(self, *, message: str, until: str, **options) -> None:
        end = parse_when(until, name="--until") if until else None
        status = maintenance_mode_enable(message=message, until=end, via="command line")
        self.stdout.write(status_text(status))

    def _off(self, **options) -> None:
        status = maintenance_mode_disable(via="command line")
        self.stdout.write(status_text(status))

    def _status(self, *, json: bool = False, **options) -> None:
        status = maintenance_mode_status()
        self.stdout.write(_json_dumps(status.as_dict()) if json else status_text(status))

    def _schedule(self, *, start: str, end: str, message: str, **options) -> None:
        now = timezone.now()
        window = maintenance_window_schedule(
            starts_at=parse_when(start, name="--start", now=now),
            ends_at=parse_when(end, name="--end", now=now),
            message=message,
            via="command line",
        )
        self.stdout.write(
            f"Planned window #{window.pk}: from {date_time_text(window.starts_at)} to {date_time_text(window.ends_at)}."
        )

    def _cancel_window(self, *, window_id: int, **options) -> None:
        window = maintenance_window_cancel(window_id=window_id, via="command line")
        self.stdout.write(f"Cancelled window #{window.pk}.")

    def _windows(self, **options) -> None:
        windows = maintenance_windows_planned()
        if not windows:
            self.stdout.write("No maintenance window is planned.")
        for window in windows:
            self.stdout.write(
                f"#{window.pk}: {date_time_text(window.starts_at)} to {date_time_text(window.ends_at)}: "
                f"{window.message or '(default message)'}"
            )


def _json_dumps(data: dict) -> str:
    return json.dumps(data, indent=2)
