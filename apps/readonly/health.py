"""The ``maintenance`` readiness check: says whether maintenance mode is on, and never fails readiness, so that load
balancers keep sending reads to a portal in maintenance."""

from apps.core.formatting import date_time_text
from apps.core.health import Check

from .services import maintenance_mode_status


def check_maintenance() -> str:
    """ "off", or "on until …" with the message; a planned window within a day is mentioned."""
    status = maintenance_mode_status()
    if status.active:
        end = f"until {date_time_text(status.until)}" if status.until else "until turned off"
        return f"on ({status.source}) {end}: {status.message}"
    if status.upcoming:
        window = status.upcoming[0]
        return f"off; a window is planned from {date_time_text(window.starts_at)} to {date_time_text(window.ends_at)}"
    return "off"


# Optional, and it only fails if the database cannot be read (which the database check reports as down anyway).
MAINTENANCE_CHECK = Check("maintenance", check_maintenance, required=False, uses_database=True)
