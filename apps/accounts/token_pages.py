"""Token pages on the account page: create (secret shown once) and revoke."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from .models import ApiToken
from .sudo import sudo_required
from .tokens import SCOPES, TokenError, may_hold_unexpiring_token, token_create, token_revoke


def _form_context(request, **extra) -> dict:
    return {
        "scopes": SCOPES,
        "default_days": settings.API_TOKEN_DEFAULT_DAYS,
        "max_days": settings.API_TOKEN_MAX_DAYS,
        "may_skip_expiry": may_hold_unexpiring_token(request.user),
        **extra,
    }


def _expiry_days(raw: str) -> int | None:
    if raw == "never":
        return None
    if not raw.strip().isdigit():
        raise TokenError(f"Expiry must be a number of days from 1 to {settings.API_TOKEN_MAX_DAYS}.")
    return int(raw)


@never_cache
@login_required
@sudo_required
@require_http_methods(["GET", "POST"])
def token_new(request):
    """Create a token; needs a code-verified session re-authenticated within the sudo window."""
    if not request.user.is_verified():
        messages.error(request, "Creating a token needs two-factor authentication: set up an authenticator first.")
        return redirect("account")
    if request.method == "GET":
        return render(request, "accounts/token_new.html", _form_context(request))
    try:
        issued = token_create(
            owner=request.user,
            name=request.POST.get("name", ""),
            scopes=request.POST.getlist("scopes") or ["read"],
            expires_in_days=_expiry_days(request.POST.get("expires_in_days", "")),
            allowed_networks=request.POST.get("allowed_networks", "").split(),
        )
    except TokenError as error:
        return render(request, "accounts/token_new.html", _form_context(request, error=str(error)), status=400)
    return render(request, "accounts/token_created.html", {"token": issued.token, "secret": issued.secret})


@login_required
@require_POST
def token_revoke_page(request, token_id: int):
    token = get_object_or_404(ApiToken, pk=token_id, owner=request.user)
    token_revoke(token=token, by=request.user)
    messages.success(request, f"Token {token.name} ({token.prefix}…) revoked.")
    return redirect("account")
