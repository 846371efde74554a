"""Idle expiry and activity tracking of signed-in sessions."""

from . import sessions


class SessionActivityMiddleware:
    """Sign out a session idle for longer than SESSION_IDLE_MINUTES; otherwise record its activity.

    Runs right after AuthenticationMiddleware and before django-otp's
    OTPMiddleware, so that everything after it (OTP verification, MFA
    enrollment, the view) sees an expired session as anonymous. Activity is
    written at most once a minute (see ``sessions.user_session_touch``).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if session is not None and sessions.session_is_signed_in(request=request):
            user = request.user
            if user.is_authenticated:
                idle_seconds = sessions.session_idle_for(request=request)
                if idle_seconds is not None:
                    sessions.session_expire_idle(request=request, user=user, idle_seconds=idle_seconds)
                else:
                    sessions.user_session_touch(request=request, user=user)
        return self.get_response(request)
