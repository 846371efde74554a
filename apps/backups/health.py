"""The backups' readiness check, contributed to core's /health/ready report."""

from apps.core.health import Check, CheckFailed

from .metrics import backup_metrics_refresh
from .selectors import backups_health


def check_backups() -> str:
    # Readiness is probed often and by every process, so it also keeps the backup gauges current.
    backup_metrics_refresh()
    ok, detail = backups_health()
    if not ok:
        raise CheckFailed(detail)
    return detail


# Old, missing or unverifiable backups need an operator, but the portal still serves: degraded, not down.
BACKUPS_CHECK = Check("backups", check_backups, required=False, uses_database=True)
