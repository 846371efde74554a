"""The fresh-second-factor rule (``apps.accounts.sudo``) for API views: one check and one error for every endpoint
that lets secrets or evidence leave the portal or mints a credential."""

from django.conf import settings
from rest_framework.exceptions import PermissionDenied

from ..models import ApiToken
from ..sudo import sudo_second_factor_fresh, sudo_url


class ReauthenticationRequired(PermissionDenied):
    default_code = "reauthentication_required"


def require_fresh_second_factor(request, *, doing: str, next_url: str) -> None:
    """Refuse (403 ``reauthentication_required``) unless ``sudo_second_factor_fresh`` holds for this request.

    ``doing`` names the action in the message ("downloading a backup"); ``next_url`` is where the
    re-authentication page sends the user back to. API tokens are refused outright: a token proves neither a
    password nor a code typed just now, however recently it was issued.
    """
    window = settings.SUDO_WINDOW_MINUTES
    if isinstance(request.auth, ApiToken):
        raise ReauthenticationRequired(
            f"API tokens cannot be used for {doing}: sign in with a browser session and confirm your password and "
            f"authenticator code (valid for {window} minutes), then use that session."
        )
    if not sudo_second_factor_fresh(request):
        raise ReauthenticationRequired(
            f"{doing.capitalize()} needs your password and a fresh authenticator code from the last {window} "
            f"minutes: re-authenticate at {sudo_url(next_url)} and try again."
        )
