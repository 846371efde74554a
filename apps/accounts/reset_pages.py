"""Password reset pages: ask for a link, the answer, the link's new-password page, and what happened after.

Thin doors into ``password_reset``. The link's page is Django's PasswordResetConfirmView: it moves the token from
the address into the session and redirects to an address without it, so the token is in no later request, page
or Referer header; these pages also send ``Referrer-Policy: same-origin`` whatever the site-wide policy, so no
address of theirs leaves the portal. (Not ``no-referrer``: browsers then send ``Origin: null`` with the form, which
the CSRF check rightly refuses.)
"""

from __future__ import annotations

from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import INTERNAL_RESET_SESSION_TOKEN
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from apps.core import formatting
from apps.core.queueing import QueueUnavailable

from . import password_reset, selectors
from .forms import PasswordResetRequestForm, ResetPasswordForm

THROTTLED_STATUS = 429
UNAVAILABLE_STATUS = 503


def _referrer_same_origin(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["Referrer-Policy"] = "same-origin"
        return response

    return wrapped


def _valid_minutes() -> int:
    return settings.PASSWORD_RESET_TIMEOUT // 60


@never_cache
@require_http_methods(["GET", "POST"])
def password_reset_request(request):
    """ "Forgot your password?": an email address; the answer never says whether an account uses it."""
    form = PasswordResetRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            password_reset.password_reset_request(address=form.cleaned_data["email"], request=request)
        except password_reset.PasswordResetThrottled as exc:
            retry_at = timezone.now() + timedelta(seconds=exc.retry_after_seconds)
            context = {"rate": exc.rate, "retry_at": retry_at}
            response = render(request, "accounts/password_reset_throttled.html", context, status=THROTTLED_STATUS)
            response["Retry-After"] = str(exc.retry_after_seconds)
            return response
        except QueueUnavailable as exc:
            form.add_error(None, str(exc))
            context = {"form": form, "minutes": _valid_minutes()}
            response = render(request, "accounts/password_reset_request.html", context, status=UNAVAILABLE_STATUS)
            response["Retry-After"] = str(exc.retry_after_seconds)
            return response
        # The same answer whether a link was sent, no account uses the address, or the address is over its limit.
        return redirect("password-reset-sent")
    return render(request, "accounts/password_reset_request.html", {"form": form, "minutes": _valid_minutes()})


@never_cache
@require_GET
def password_reset_sent(request):
    return render(request, "accounts/password_reset_sent.html", {"minutes": _valid_minutes()})


@method_decorator(_referrer_same_origin, name="dispatch")
class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """The link from the email: a new password, for an active account whose token is valid.

    No automatic sign-in: the person signs in with the new password, and with their authenticator's code as before.
    """

    template_name = "accounts/password_reset_confirm.html"
    form_class = ResetPasswordForm
    post_reset_login = False
    success_url = reverse_lazy("password-reset-complete")

    def get_user(self, uidb64):
        user = super().get_user(uidb64)
        # An account deactivated (or given an unusable password) after the email was sent gets nothing either.
        if user is None or not user.is_active or not user.has_usable_password():
            return None
        return user

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "minutes": _valid_minutes(), "reset_user": self.user}

    def form_valid(self, form):
        request = self.request
        if request.user.is_authenticated:
            # This browser's own session ends with all the others; sign it out properly first.
            auth.logout(request)
        else:
            request.session.pop(INTERNAL_RESET_SESSION_TOKEN, None)
        done = password_reset.password_reset_complete(
            user=form.user, password=form.cleaned_data["new_password1"], request=request
        )
        password_reset.completed_remember(request=request, done=done)
        return redirect(self.get_success_url())


@never_cache
@_referrer_same_origin
@require_http_methods(["GET", "POST"])
def password_reset_complete(request):
    """After the new password: the sessions that were signed out, and the API tokens, which one may revoke here."""
    done = password_reset.completed_recall(request=request)
    if done is None:
        messages.info(request, "Sign in with your password.")
        return redirect("login")
    if request.method == "POST":
        revoked = password_reset.password_reset_tokens_revoke(user=done.user)
        messages.success(request, f"Revoked {formatting.count(revoked, 'API token')}.")
        return redirect("password-reset-complete")
    context = {
        "reset_user": done.user,
        "signed_out": done.signed_out,
        "ended_sessions": done.sessions,
        "live_tokens": selectors.tokens_live(user=done.user),
        "mfa_enabled": selectors.user_has_confirmed_device(user=done.user),
    }
    return render(request, "accounts/password_reset_complete.html", context)
