"""Re-authentication ("sudo mode") for sensitive actions.

A session is *fresh* for SUDO_WINDOW_MINUTES after the user typed their
password and, if they have an authenticator, a current OTP code — at sign-in
or on the re-authentication page. Use::

    @login_required
    @sudo_required
    def my_sensitive_view(request): ...

or, where a decorator does not fit (admin actions, API views)::

    if not sudo_is_fresh(request):
        return sudo_redirect(request, next_url)

The most sensitive actions (restores, downloads of backups and reports, privilege and password changes in the
admin) use ``sudo_second_factor_fresh``, which also demands that the window was opened with an authenticator code.
"""

from __future__ import annotations

import time
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.shortcuts import redirect
from django.urls import reverse

SUDO_SESSION_KEY = "sudo_verified_at"
SUDO_USER_SESSION_KEY = "sudo_user_id"


def sudo_mark(request) -> None:
    """Record that the signed-in user has just re-authenticated."""
    request.session[SUDO_SESSION_KEY] = time.time()
    request.session[SUDO_USER_SESSION_KEY] = str(request.user.pk)


def sudo_is_fresh(request) -> bool:
    """True when the signed-in user re-authenticated within the last SUDO_WINDOW_MINUTES."""
    user = getattr(request, "user", None)
    session = getattr(request, "session", None)
    if user is None or session is None or not user.is_authenticated:
        return False
    verified_at = session.get(SUDO_SESSION_KEY)
    if not isinstance(verified_at, int | float) or session.get(SUDO_USER_SESSION_KEY) != str(user.pk):
        return False
    return 0 <= time.time() - verified_at <= settings.SUDO_WINDOW_MINUTES * 60


def sudo_second_factor_fresh(request) -> bool:
    """Sudo mode proven with an authenticator code: an OTP-verified session that re-authenticated just now.

    The rule for the most sensitive actions (restoring a backup, changing someone's privileges or password):
    unlike ``sudo_is_fresh`` it is never satisfied by a password alone.
    """
    is_verified = getattr(request.user, "is_verified", None)
    return callable(is_verified) and is_verified() and sudo_is_fresh(request)


def sudo_url(next_url: str) -> str:
    return f"{reverse('sudo')}?{urlencode({REDIRECT_FIELD_NAME: next_url})}"


def sudo_redirect(request, next_url: str | None = None):
    """Send the user to the re-authentication page, coming back to ``next_url`` (default: this page)."""
    return redirect(sudo_url(next_url or request.get_full_path()))


def sudo_required(view):
    """Decorate a function view: without a fresh re-authentication, re-authenticate first.

    The user comes back with a GET, so a view doing something on POST should
    show its confirmation form on GET.
    """

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not sudo_is_fresh(request):
            return sudo_redirect(request)
        return view(request, *args, **kwargs)

    return wrapped


def sudo_admin_action_check(modeladmin, request):
    """For an admin action: None when the session is fresh, else the response that re-authenticates.

    The action's POST cannot be replayed after re-authentication, so the user
    comes back to the list and runs the action again::

        if (response := sudo_admin_action_check(self, request)) is not None:
            return response
    """
    if sudo_is_fresh(request):
        return None
    from django.contrib import messages

    modeladmin.message_user(
        request,
        "This action needs a fresh password and authenticator code. Confirm them, then run the action again.",
        level=messages.WARNING,
    )
    return sudo_redirect(request, request.get_full_path())
