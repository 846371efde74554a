"""The notification preferences page at /account/notifications/ (linked from the account page)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from apps.core.errors import ApplicationError

from .preferences import preferences_of, preferences_save


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def notification_preferences(request):
    """The events the user's role may be told of, each with email on or off; saving posts, then redirects here."""
    if request.method == "POST":
        on = set(request.POST.getlist("email"))
        choices = {choice.name: choice.name in on for choice in preferences_of(user=request.user)}
        try:
            changed = preferences_save(user=request.user, choices=choices)
        except ApplicationError as error:  # the role changed while the page was open
            messages.error(request, error.message)
        else:
            if changed:
                events = f"{len(changed)} event{'s' if len(changed) != 1 else ''}"
                messages.success(request, f"Saved: email for {events} changed.")
            else:
                messages.info(request, "Nothing changed.")
        return redirect("notification-preferences")
    context = {"choices": preferences_of(user=request.user), "has_email": bool(request.user.email)}
    return render(request, "notifications/preferences.html", context)
