"""Pages of accounts: two-step sign-in, MFA enrollment, account page, re-authentication.

Thin doors into ``services``; the session only remembers who passed the
password step (for a few minutes) and the recovery codes waiting to be shown.
"""

from __future__ import annotations

import time
from base64 import b32encode
from urllib.parse import urlencode

import django_otp
import segno
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from . import selectors, services, sessions
from .forms import CurrentPasswordChangeForm, EnrollmentForm, OtpCodeForm, ReauthenticationForm
from .lockout import lockout_response
from .models import User
from .oidc import services as oidc_services
from .oidc import views as oidc_views
from .sudo import sudo_mark, sudo_required

PENDING_USER_KEY = "mfa_pending_user_id"
PENDING_BACKEND_KEY = "mfa_pending_backend"
PENDING_AT_KEY = "mfa_pending_at"
# The code step must follow the password step within this time.
PENDING_MAX_AGE_SECONDS = 300
NEW_CODES_KEY = "mfa_new_recovery_codes"
CODES_SHOWN_ONCE = "Recovery codes are shown only once; generate new ones if you lost them."


def _safe_next(request, default: str | None = None) -> str:
    candidate = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME) or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default or reverse(settings.LOGIN_REDIRECT_URL)


def _with_next(url: str, next_url: str) -> str:
    return f"{url}?{urlencode({REDIRECT_FIELD_NAME: next_url})}"


# --- Sign-in


class PasswordLoginView(auth_views.LoginView):
    """Step 1: the password. Users with an authenticator continue to the code step, signed in only after it."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "sso": oidc_views.sso_context(self.request)}

    def post(self, request, *args, **kwargs):
        # OIDC_ONLY: refused before the password is even checked (no guesses counted, nothing learned).
        refusal = oidc_services.password_sign_in_refusal(username=request.POST.get("username", ""))
        if refusal is not None:
            context = self.get_context_data(form=self.get_form_class()(request), refusal=refusal)
            return self.render_to_response(context, status=403)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        user = form.get_user()
        next_url = self.get_success_url()
        if selectors.user_has_confirmed_device(user=user):
            session = self.request.session
            session[PENDING_USER_KEY] = str(user.pk)
            session[PENDING_BACKEND_KEY] = user.backend
            session[PENDING_AT_KEY] = time.time()
            return redirect(_with_next(reverse("login-otp"), next_url))
        response = super().form_valid(form)
        if selectors.mfa_required_for(user=user):
            return redirect(_with_next(reverse("mfa-enroll"), next_url))
        return response


def _pending_user(request) -> tuple[User | None, str | None]:
    session = request.session
    started = session.get(PENDING_AT_KEY)
    if not isinstance(started, int | float) or time.time() - started > PENDING_MAX_AGE_SECONDS:
        return None, None
    user = User.objects.filter(pk=session.get(PENDING_USER_KEY), is_active=True).first()
    return user, session.get(PENDING_BACKEND_KEY)


def _pending_clear(request) -> None:
    for key in (PENDING_USER_KEY, PENDING_BACKEND_KEY, PENDING_AT_KEY):
        request.session.pop(key, None)


@never_cache
@require_http_methods(["GET", "POST"])
def login_otp(request):
    """Step 2: a TOTP or recovery code, for the user who just passed the password step.

    Also verifies a session that is signed in but not yet OTP-verified.
    """
    next_url = _safe_next(request)
    if request.user.is_authenticated:
        user, backend = request.user, None
        if user.is_verified() or not selectors.user_has_confirmed_device(user=user):
            return redirect(next_url)
    else:
        user, backend = _pending_user(request)
        if user is None:
            _pending_clear(request)
            messages.info(request, "Sign in with your password first.")
            return redirect(_with_next(reverse("login"), next_url))
    form = OtpCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        credentials = {"username": user.get_username()}
        if not AxesProxyHandler.is_allowed(request, credentials):
            _pending_clear(request)
            return lockout_response(request, credentials=credentials)
        throttled_until = services.otp_throttled_until(user=user)
        if throttled_until is not None:
            # Not a guess: the code is not even checked while the device is throttled.
            form.add_error(
                "code",
                f"Too many wrong codes: wait until {throttled_until:%H:%M:%S} UTC, then enter the current code.",
            )
            return render(request, "accounts/login_otp.html", _otp_step_context(form, next_url, user))
        device = services.otp_verify(user=user, token=form.cleaned_data["code"], request=request)
        if device is not None:
            if backend is not None:
                _pending_clear(request)
                user.otp_device = device  # django-otp stores it in the session on login
                auth.login(request, user, backend=backend)
            else:
                django_otp.login(request, device)
            sudo_mark(request)  # password and a fresh code were just given
            return redirect(next_url)
        if getattr(request, "axes_locked_out", False):
            _pending_clear(request)
            return lockout_response(request, credentials=credentials)
        form.add_error("code", "That code is not correct, or it was already used. Enter the current code.")
    return render(request, "accounts/login_otp.html", _otp_step_context(form, next_url, user))


def _otp_step_context(form, next_url: str, user) -> dict:
    return {
        "form": form,
        "next": next_url,
        "username": user.username,
        "has_totp": selectors.user_has_totp(user=user),
        "has_passkey": selectors.user_has_passkey(user=user),
    }


# --- Enrollment and recovery codes


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def mfa_enroll(request):
    """Set up an authenticator: scan the QR code or type the key, then confirm with a code."""
    next_url = _safe_next(request, default=reverse("account"))
    try:
        device = services.totp_enrollment_start(user=request.user)
    except services.MfaError as exc:
        messages.info(request, str(exc))
        return redirect("account")
    form = EnrollmentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            codes = services.totp_enrollment_confirm(
                user=request.user, device_id=device.pk, token=form.cleaned_data["code"]
            )
        except services.MfaError as exc:
            form.add_error("code", str(exc))
        else:
            device.refresh_from_db()
            django_otp.login(request, device)
            sudo_mark(request)
            request.session[NEW_CODES_KEY] = codes
            messages.success(request, "Two-factor authentication is on.")
            return redirect(_with_next(reverse("mfa-recovery-codes"), next_url))
    context = {
        "form": form,
        "next": next_url,
        "qr_svg": segno.make(device.config_url, error="m").svg_inline(scale=4, border=2),
        "manual_key": b32encode(device.bin_key).decode(),
        "issuer": settings.OTP_TOTP_ISSUER,
        "mfa_required": selectors.mfa_required_for(user=request.user),
    }
    return render(request, "accounts/mfa_enroll.html", context)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def mfa_recovery_codes(request):
    """Show new recovery codes once; they leave the session when the user says they saved them."""
    next_url = _safe_next(request, default=reverse("account"))
    codes = request.session.get(NEW_CODES_KEY)
    if request.method == "POST" or not codes:
        request.session.pop(NEW_CODES_KEY, None)
        if not codes:
            messages.info(request, CODES_SHOWN_ONCE)
        return redirect(next_url)
    return render(request, "accounts/mfa_recovery_codes.html", {"codes": codes, "next": next_url})


@never_cache
@login_required
def mfa_recovery_codes_download(request):
    codes = request.session.get(NEW_CODES_KEY)
    if not codes:
        messages.info(request, CODES_SHOWN_ONCE)
        return redirect("account")
    text = (
        f"Opsdeck recovery codes for {request.user.get_username()}\n"
        "Each code signs you in once, instead of a code from your authenticator app.\n\n" + "\n".join(codes) + "\n"
    )
    response = HttpResponse(text, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="opsdeck-recovery-codes.txt"'
    return response


@never_cache
@login_required
@sudo_required
@require_http_methods(["GET", "POST"])
def mfa_recovery_codes_regenerate(request):
    if request.method == "POST":
        try:
            request.session[NEW_CODES_KEY] = services.recovery_codes_regenerate(user=request.user)
        except services.MfaError as exc:
            messages.error(request, str(exc))
            return redirect("account")
        return redirect("mfa-recovery-codes")
    return render(request, "accounts/confirm.html", {
        "title": "New recovery codes",
        "text": "Your current recovery codes stop working and 10 new ones are shown once.",
        "button": "Generate new recovery codes",
    })  # fmt: skip


@never_cache
@login_required
@sudo_required
@require_http_methods(["GET", "POST"])
def mfa_disable(request):
    if request.method == "POST":
        services.mfa_remove(user=request.user)
        if selectors.mfa_required_for(user=request.user):
            messages.warning(request, "Your authenticator was removed. Your role requires one: set up a new one now.")
            return redirect("mfa-enroll")
        messages.success(request, "Two-factor authentication is off; recovery codes were deleted.")
        return redirect("account")
    return render(request, "accounts/confirm.html", {
        "title": "Turn off two-factor authentication",
        "text": "Your authenticator and all recovery codes are removed; signing in will need only your password"
        + (" and one of your passkeys." if selectors.user_has_passkey(user=request.user) else "."),
        "button": "Turn off two-factor authentication",
    })  # fmt: skip


# --- Account page and re-authentication


@never_cache
@login_required
def account(request):
    """The signed-in user's profile and security settings; new sections go into the template."""
    request.session.pop(NEW_CODES_KEY, None)  # shown once: leaving the codes page forgets them
    user = request.user
    context = {
        "profile_user": user,
        "roles": user.role_names,
        "mfa_enabled": selectors.user_has_totp(user=user),
        "passkey_enabled": selectors.user_has_passkey(user=user),
        "mfa_required": selectors.mfa_required_for(user=user),
        "recovery_codes_remaining": selectors.recovery_codes_remaining(user=user),
        "user_sessions": sessions.user_sessions_active(user=user),
        "current_session_key": request.session.session_key,
        "session_idle_minutes": settings.SESSION_IDLE_MINUTES,
        "session_absolute_hours": settings.SESSION_ABSOLUTE_HOURS,
    }
    return render(request, "accounts/account.html", context)


@login_required
@require_http_methods(["POST"])
def session_end(request, pk: int):
    """End one of the user's other sessions (account page, "End")."""
    try:
        ended = sessions.session_end(
            user=request.user, user_session_id=pk, current_session_key=request.session.session_key, request=request
        )
    except sessions.SessionNotFound as exc:
        raise Http404(str(exc)) from None
    except sessions.SessionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Ended the session of {ended}; that browser is signed out.")
    return redirect(f"{reverse('account')}#sessions")


@login_required
@require_http_methods(["POST"])
def sessions_end_others(request):
    """End every session of the user except this one (account page, "Sign out everywhere else")."""
    count = sessions.sessions_end_others(
        user=request.user, current_session_key=request.session.session_key, request=request
    )
    if count:
        messages.success(request, f"Signed out {count} other session{'s' if count != 1 else ''}.")
    else:
        messages.info(request, "There were no other sessions to sign out.")
    return redirect(f"{reverse('account')}#sessions")


@never_cache
@login_required
@sudo_required
@require_http_methods(["GET", "POST"])
def password_change(request):
    """Change one's own password: the current one, inside the sudo window; every other session is signed out."""
    form = CurrentPasswordChangeForm(request.user, request.POST or None, request=request)
    if request.method == "POST":
        valid = form.is_valid()
        if getattr(request, "axes_locked_out", False):
            return lockout_response(request, credentials={"username": request.user.get_username()})
        if valid:
            ended = services.user_password_change(
                user=request.user, password=form.cleaned_data["new_password1"], request=request
            )
            sessions.session_keep_after_password_change(request=request, user=request.user)
            signed_out = f" {ended} other session{'s' if ended != 1 else ''} signed out." if ended else ""
            messages.success(request, f"Your password was changed.{signed_out}")
            return redirect("account")
    return render(request, "accounts/password_change.html", {"form": form})


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def reauthenticate(request):
    """Confirm the password (and a code, with an authenticator), or use a passkey, to open the sudo window.

    A user whose only second factor is a passkey (or who has no local password) confirms with the passkey.
    """
    next_url = _safe_next(request, default=reverse("account"))
    user = request.user
    needs_code = selectors.user_has_totp(user=user)
    has_passkey = selectors.user_has_passkey(user=user)
    at_provider = oidc_services.sudo_at_provider(user=user)
    provider_url = f"{reverse('oidc-login')}?{urlencode({'reauth': 1, REDIRECT_FIELD_NAME: next_url})}"
    if at_provider and not has_passkey:
        # No password to confirm (or OIDC_ONLY refuses it): the provider authenticates them again.
        return redirect(provider_url)
    # A password alone would open the window that otherwise takes a second factor: not while a passkey is the factor.
    password_offered = not at_provider and user.has_usable_password() and (needs_code or not has_passkey)
    form = ReauthenticationForm(request.POST or None, needs_code=needs_code)
    if request.method == "POST" and not password_offered:
        form.is_valid()
        form.add_error(None, "Confirm with your passkey.")
    elif request.method == "POST" and form.is_valid():
        checked = auth.authenticate(request, username=user.get_username(), password=form.cleaned_data["password"])
        if checked is None or checked.pk != user.pk:
            if getattr(request, "axes_locked_out", False):
                return lockout_response(request, credentials={"username": user.get_username()})
            form.add_error("password", "That password is not correct.")
        elif needs_code:
            device = services.otp_verify(user=user, token=form.cleaned_data["code"], request=request)
            if device is None:
                if getattr(request, "axes_locked_out", False):
                    return lockout_response(request, credentials={"username": user.get_username()})
                form.add_error("code", "That code is not correct, or it was already used.")
            else:
                django_otp.login(request, device)
        if not form.errors:
            sudo_mark(request)
            return redirect(next_url)
    context = {
        "form": form,
        "next": next_url,
        "window": settings.SUDO_WINDOW_MINUTES,
        "password_offered": password_offered,
        "has_passkey": has_passkey,
        "provider_url": provider_url if at_provider else "",
    }
    return render(request, "accounts/reauthenticate.html", context)
