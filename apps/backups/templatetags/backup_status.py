"""Admin-wide status of the backups: a banner when they are missing, too old or failed verification."""

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
