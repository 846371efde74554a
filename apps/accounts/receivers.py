"""Audit events raised by django-axes; the list of signed-in sessions kept up to date."""

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver
from django.utils import timezone

from apps.audit.choices import Outcome
from apps.audit.services import event_record

from .alerts import lockout_notify, new_address_signin_notify
from .sessions import user_session_forget, user_session_start


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
    lockout_notify(username=username, ip_address=ip_address, locked_until=until)


@receiver(user_logged_in, dispatch_uid="accounts_session_start")
def _session_started(sender, request, user, **kwargs) -> None:
    user_session_start(request=request, user=user)
    new_address_signin_notify(request=request, user=user)


@receiver(user_logged_out, dispatch_uid="accounts_session_forget")
def _session_ended(sender, request, user, **kwargs) -> None:
    # Sent before the session is flushed, so its key is still the one being ended.
    session = getattr(request, "session", None) if request is not None else None
    if session is not None:
        user_session_forget(session_key=session.session_key)
