"""Keep users who must use MFA inside enrollment until they have enrolled."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from . import access

# Always reachable, also for a user who still has to enroll: the way in and out, and probes.
ALWAYS_OPEN_URL_NAMES = (
    "login",
    "login-otp",
    "logout",
    "mfa-enroll",
    "mfa-recovery-codes",
    "mfa-recovery-codes-download",
    # Passkeys: the second step of the sign-in, and enrollment with a passkey instead of an authenticator app.
    "passkey-login-begin",
    "passkey-login-complete",
    "passkey-register-begin",
    "passkey-register-complete",
)
ALWAYS_OPEN_PREFIXES = ("/health/", "/metrics", "/favicon.ico")


class MfaEnrollmentMiddleware:
    """A signed-in user whose role requires MFA, in a session not verified by OTP, may do nothing else.

    Without a confirmed device they are sent to enrollment; with one (a session
    signed in some other way) to the code step. API paths get a 403 JSON body.
    Runs after django-otp's OTPMiddleware, which provides ``user.is_verified()``.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        # Resolved on first use: the URLconf is not loaded yet when middleware is built.
        self._open_paths: tuple[str, ...] | None = None
        self._open_exact: set[str] = set()

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not self._is_open(request.path):
            refusal = access.mfa_refusal(user=user, verified=user.is_verified())
            if refusal is not None:
                return self._blocked(request, refusal)
        return self.get_response(request)

    def _is_open(self, path: str) -> bool:
        if self._open_paths is None:
            static = "/" + settings.STATIC_URL.lstrip("/")
            self._open_paths = (*ALWAYS_OPEN_PREFIXES, static)
            self._open_exact = {reverse(name) for name in ALWAYS_OPEN_URL_NAMES}
        return path in self._open_exact or path.startswith(self._open_paths)

    def _blocked(self, request, refusal: str):
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": refusal, "code": "mfa_required"}, status=403)
        step = "login-otp" if refusal == access.MFA_VERIFY_HINT else "mfa-enroll"
        return redirect(f"{reverse(step)}?{urlencode({REDIRECT_FIELD_NAME: request.get_full_path()})}")
