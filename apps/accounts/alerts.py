"""Sign-in events people are told about: a privileged account locked out, an administrator's new address."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.urls import reverse

from apps.audit.choices import Outcome
from apps.audit.models import AuditEvent
from apps.core.choices import Role
from apps.core.events import notify
from apps.core.permissions import has_role
from apps.core.request_context import client_ip

from .models import user_agent_summary

PRIVILEGED_ROLES = (Role.ADMIN, Role.COMPLIANCE)
SIGN_IN_ACTION = "auth.login.succeeded"


def lockout_notify(*, username: str, ip_address: str, locked_until) -> None:
    """Announce ``account.locked_out`` when the locked-out account is an administrator or compliance officer."""
    user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first()
    if user is None or not (user.is_staff or has_role(user, *PRIVILEGED_ROLES)):
        return
    notify(
        "account.locked_out",
        data={"username": username, "ip": ip_address, "locked_until": locked_until, "path": reverse("admin:index")},
        user=user,
        obj=user,
        summary=f"{username} is locked out after too many failed sign-ins from {ip_address or 'an unknown address'}",
    )


def new_address_signin_notify(*, request, user) -> None:
    """Announce ``account.new_ip_signin`` when an administrator signs in from an address none of their earlier
    sign-ins (in the audit trail) came from. A first sign-in has nothing to compare with and is not announced."""
    ip = client_ip(request) if request is not None else ""
    if not ip or not has_role(user, Role.ADMIN):
        return
    sign_ins = AuditEvent.objects.filter(
        object_type="accounts.user", object_id=str(user.pk), action=SIGN_IN_ACTION, outcome=Outcome.SUCCESS
    )
    request_id = getattr(request, "request_id", "")
    earlier = sign_ins.exclude(request_id=request_id) if request_id else sign_ins
    if not earlier.exists() or earlier.filter(ip=ip).exists():
        return
    device = user_agent_summary(request.META.get("HTTP_USER_AGENT", ""))
    notify(
        "account.new_ip_signin",
        data={"username": user.get_username(), "ip": ip, "device": device, "path": reverse("account")},
        user=user,
        obj=user,
        summary=f"{user.get_username()} signed in from {ip} ({device}), an address not used before",
    )
