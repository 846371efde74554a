"""Admin-wide status of the audit trail: a banner when its latest verification failed."""

from django import template

from apps.core.choices import MaintenanceStatus
from apps.core.models import MaintenanceRun

register = template.Library()

# The Celery name of apps.audit.tasks.audit_verify (maintenance_task prefixes "maintenance.").
VERIFY_TASK_NAME = "maintenance.audit_verify"


@register.inclusion_tag("admin/audit/verify_banner.html", takes_context=True)
def audit_verify_banner(context) -> dict:
    """The latest verification run when it failed, for signed-in staff; one indexed query, none otherwise."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not (user.is_active and user.is_staff):
        return {"failed_run": None}
    latest = (
        MaintenanceRun.objects.filter(task_name=VERIFY_TASK_NAME)
        .order_by("-started_at", "-id")
        .only("status", "started_at", "finished_at", "message")
        .first()
    )
    return {"failed_run": latest if latest is not None and latest.status == MaintenanceStatus.FAILED else None}
