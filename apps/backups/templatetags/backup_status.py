"""Backups in templates: the admin-wide banner when they are missing, too old or failed verification, and how
durations read."""

from django import template

from ..selectors import backups_health

register = template.Library()


@register.inclusion_tag("admin/backups/health_banner.html", takes_context=True)
def backups_health_banner(context) -> dict:
    """Why backups are degraded, for signed-in staff; two indexed queries, none for anyone else."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not (user.is_active and user.is_staff):
        return {"problem": ""}
    ok, detail = backups_health()
    return {"problem": "" if ok else detail}


@register.filter
def duration(seconds: float | None) -> str:
    """Seconds as people read them: "4.2 s" for short runs, "12 min 5 s" for long ones, "—" for none."""
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"
