"""Audit events raised by django-axes."""

from axes.signals import user_locked_out
from django.conf import settings
from django.dispatch import receiver
from django.utils import timezone

from apps.audit.choices import Outcome
from apps.audit.services import event_record


@receiver(user_locked_out, dispatch_uid="accounts_audit_lockout")
def _locked_out(sender, request, username, ip_address, **kwargs) -> None:
    # axes signals again for every attempt refused during the lockout; those were not
    # counted (failures_since_start stays None), and the lockout is recorded once.
    if getattr(request, "axes_failures_since_start", None) is None:
        return
    until = timezone.now() + settings.AXES_COOLOFF_TIME
    event_record(
        action="auth.lockout",
        outcome=Outcome.FAILURE,
        request=request,
        object_type="accounts.user",
        object_repr=str(username or "")[:150],
        changes={"username": username, "ip_address": ip_address, "locked_until": until.isoformat(timespec="seconds")},
    )
