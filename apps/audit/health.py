"""The audit forwarding readiness check, contributed to core's /health/ready report."""

from apps.core.health import Check, CheckFailed

from .forwarding import forwarding_health


def check_forwarding() -> str:
    # Probed often and by every process, so it also keeps the lag gauges current.
    ok, detail = forwarding_health()
    if not ok:
        raise CheckFailed(detail)
    return detail


# A collector that is down delays the SIEM's copy but loses nothing, and the portal still serves: degraded, not down.
FORWARDING_CHECK = Check("audit_forwarding", check_forwarding, required=False, uses_database=True)
