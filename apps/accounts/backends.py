"""Authentication backends."""

from axes.backends import AxesStandaloneBackend


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check, skipped when there is no request.

    Lockout is per username *and client address*; a password check without a
    request (management commands, shell scripts) has no client to lock out, and
    axes would otherwise refuse it with an exception.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
