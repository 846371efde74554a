"""Token pages on the account page: create (secret shown once) and revoke.

Creating posts, then redirects to the page that shows the secret: the secret waits in the session for that one
page view and leaves it there, so reloading neither re-submits the form nor shows the secret again.
"""

from datetime import date, timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .models import ApiToken
from .sudo import sudo_required
from .tokens import SCOPES, TokenError, may_hold_unexpiring_token, token_create, token_revoke

CREATED_SESSION_KEY = "api_token_created"
EXPIRY_PRESET_DAYS = (7, 30, 90)
SHOWN_ONCE_MESSAGE = "The new token's secret was shown once and is gone; create another token if it was not saved."


def _form_context(request, **extra) -> dict:
    today, max_days = timezone.now().date(), settings.API_TOKEN_MAX_DAYS
    return {
        "scopes": SCOPES,
        "max_days": max_days,
        "first_date": today + timedelta(days=1),
        "last_date": today + timedelta(days=max_days),
        "default_date": today + timedelta(days=min(settings.API_TOKEN_DEFAULT_DAYS, max_days)),
        "presets": [(days, today + timedelta(days=days)) for days in EXPIRY_PRESET_DAYS if days <= max_days],
        "may_skip_expiry": may_hold_unexpiring_token(request.user),
        **extra,
    }


def _expiry_days(post) -> int | None:
    """Days from today (UTC) to the chosen expiry date; None for "never" (the service says who may)."""
    if post.get("never_expires"):
        return None
    try:
        chosen = date.fromisoformat(post.get("expires_on", ""))
    except ValueError:
        raise TokenError("Choose the day the token expires.") from None
    return (chosen - timezone.now().date()).days


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
            expires_in_days=_expiry_days(request.POST),
            allowed_networks=request.POST.get("allowed_networks", "").split(),
        )
    except TokenError as error:
        return render(request, "accounts/token_new.html", _form_context(request, error=str(error)), status=400)
    request.session[CREATED_SESSION_KEY] = {"id": issued.token.pk, "secret": issued.secret}
    return redirect("token-created")


@never_cache
@login_required
@require_GET
def token_created(request):
    """Show a new token's secret, once: it leaves the session as this page is rendered."""
    created = request.session.pop(CREATED_SESSION_KEY, None)
    token = created and ApiToken.objects.filter(pk=created["id"], owner=request.user).first()
    if not token:
        messages.info(request, SHOWN_ONCE_MESSAGE)
        return redirect("account")
    context = {"token": token, "secret": created["secret"], "api_root": request.build_absolute_uri(reverse("api-root"))}
    return render(request, "accounts/token_created.html", context)


@login_required
@require_POST
def token_revoke_page(request, token_id: int):
    token = get_object_or_404(ApiToken, pk=token_id, owner=request.user)
    token_revoke(token=token, by=request.user)
    messages.success(request, f"Token {token.name} ({token.prefix}…) revoked.")
    return redirect("account")
