"""Doors of single sign-on: start at the provider, come back with a code, sign out there too.

mozilla-django-oidc's views with the endpoints of the cached discovery document; every failure is a page that says
what went wrong (never a 500): the provider is unreachable (503), the answer could not be verified (400), the
provider vouched for someone Opsdeck will not sign in (403).
"""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import django_otp
import jwt
import requests
from django.conf import settings
from django.contrib import auth
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth import views as auth_views
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from apps.audit.choices import Outcome
from apps.audit.services import event_record

from ..sudo import sudo_mark
from . import discovery, services
from .backend import BACKEND_PATH

REAUTH_SESSION_KEY = "oidc_reauth_states"
logger = logging.getLogger(__name__)


def sso_context(request) -> dict | None:
    """What the sign-in page shows of SSO: None when it is off."""
    if not settings.OIDC_ENABLED:
        return None
    next_url = request.GET.get(REDIRECT_FIELD_NAME) or request.POST.get(REDIRECT_FIELD_NAME) or ""
    url = reverse("oidc-login") + (f"?{urlencode({REDIRECT_FIELD_NAME: next_url})}" if next_url else "")
    return {"label": settings.OIDC_BUTTON_LABEL, "url": url, "only": settings.OIDC_ONLY}


def _error(request, *, status: int, title: str, problem: str, unavailable: bool = False):
    context = {
        "title": title,
        "problem": problem,
        "provider": discovery.provider_name(),
        "unavailable": unavailable,
        "break_glass": settings.OIDC_ONLY,
    }
    return render(request, "accounts/oidc_error.html", context, status=status)


def _error_detail(response) -> str:
    """The OAuth error of a token endpoint's answer, e.g. ' (invalid_grant: grant request is invalid)'."""
    try:
        body = response.json()
    except (AttributeError, ValueError):
        return ""
    if not isinstance(body, dict):
        return ""
    return f" ({body.get('error', '')}: {body.get('error_description', '')})"


def _unavailable(request, exc: Exception):
    event_record(
        action="auth.oidc.provider_unavailable", outcome=Outcome.FAILURE, request=request, changes={"detail": str(exc)}
    )
    return _error(
        request,
        status=503,
        title="The sign-in provider cannot be reached",
        problem=str(exc),
        unavailable=True,
    )


class OidcLoginView(OIDCAuthenticationRequestView):
    """GET /accounts/oidc/login/: to the provider's sign-in page (code flow, PKCE, state and nonce).

    ``?reauth=1`` asks the provider to authenticate the user again now (prompt=login, max_age=0): the way an SSO user
    renews the sudo window.
    """

    def __init__(self, *args, **kwargs):
        # Not the parent's: the endpoints are read when the request comes, from the discovery document.
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)

    def get(self, request):
        if not settings.OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        try:
            configuration = discovery.provider_configuration()
        except discovery.ProviderUnavailable as exc:
            return _unavailable(request, exc)
        self.OIDC_OP_AUTH_ENDPOINT = configuration["authorization_endpoint"]
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        response = super().get(request)
        if self._reauth(request):
            state = parse_qs(urlsplit(response.url).query)["state"][0]
            request.session[REAUTH_SESSION_KEY] = {state: time.time()}
        return response

    @staticmethod
    def _reauth(request) -> bool:
        return bool(request.GET.get("reauth")) and request.user.is_authenticated

    def get_extra_params(self, request):
        return {"prompt": "login", "max_age": "0"} if self._reauth(request) else {}


class OidcCallbackView(OIDCAuthenticationCallbackView):
    """GET /accounts/oidc/callback/: the provider's answer; signs the user in, with the provider's MFA if it did."""

    def get(self, request):
        if not settings.OIDC_ENABLED:
            raise Http404("Single sign-on is not configured.")
        state = request.GET.get("state", "")
        self.reauth_started = (request.session.get(REAUTH_SESSION_KEY) or {}).get(state)
        request.session.pop(REAUTH_SESSION_KEY, None)
        try:
            return super().get(request)
        except discovery.ProviderUnavailable as exc:
            return _unavailable(request, exc)
        except SuspiciousOperation as exc:
            return self._refused(request, f"The answer from the provider could not be verified: {exc}")
        except (jwt.InvalidTokenError, jwt.PyJWKError) as exc:
            # Expired, not yet valid, malformed: mozilla-django-oidc lets these through (it catches DecodeError only).
            return self._refused(request, f"The provider's ID token is not valid: {exc}")
        except requests.HTTPError as exc:
            return self._refused(
                request,
                f"The provider refused the sign-in code{_error_detail(exc.response)}; it may have been used "
                "already or expired.",
            )
        except requests.RequestException as exc:
            return _unavailable(request, discovery.ProviderUnavailable(f"The provider did not answer: {exc}"))
        except (KeyError, ValueError, TypeError):
            logger.warning("Unusable answer from the OpenID Connect provider", exc_info=True)
            return self._refused(request, "The provider's answer is malformed (a JSON document or key is missing).")
        except services.OidcRefused as exc:
            return _error(request, status=403, title="Sign-in refused", problem=str(exc))

    def _refused(self, request, problem: str):
        event_record(
            action="auth.oidc.failed", outcome=Outcome.FAILURE, request=request, changes={"reason": problem[:300]}
        )
        return _error(request, status=400, title="Sign-in did not complete", problem=problem)

    def login_failure(self):
        request = self.request
        if request.GET.get("error"):
            problem = f"The provider answered: {request.GET.get('error')} {request.GET.get('error_description', '')}"
        elif "code" not in request.GET or "state" not in request.GET:
            problem = "The provider's answer lacks its code or state; start the sign-in again."
        else:
            problem = "This sign-in was not started from this browser, or it was already completed: start again."
        return self._refused(request, problem.strip())

    def login_success(self):
        request, user = self.request, self.user
        claims = getattr(request, "oidc_claims", {})
        same_user = request.user.is_authenticated and request.user.pk == user.pk
        if self.reauth_started is not None and not same_user:
            return self._refused(
                request, "You confirmed your identity at the provider as another user than the one signed in here."
            )
        if not same_user:
            auth.login(request, user, backend=BACKEND_PATH)
        device = services.provider_mfa_device(user=user, claims=claims)
        if device is not None:
            django_otp.login(request, device)
        if (
            same_user
            and self.reauth_started is not None
            and services.reauthenticated_recently(claims=claims, started_at=self.reauth_started)
        ):
            sudo_mark(request)
        event_record(
            action="auth.oidc.signed_in", actor=user, obj=user, request=request,
            changes={"amr": claims.get("amr") or [], "provider_mfa": device is not None, "reauthenticated": same_user},
        )  # fmt: skip
        return HttpResponseRedirect(self.success_url)


class LogoutView(auth_views.LogoutView):
    """Sign out here and, after an SSO sign-in, at the provider too (its end_session_endpoint, where it has one)."""

    def post(self, request, *args, **kwargs):
        id_token = request.session.get("oidc_id_token")
        response = super().post(request, *args, **kwargs)
        if not (settings.OIDC_ENABLED and id_token):
            return response
        try:
            endpoint = discovery.provider_configuration().get("end_session_endpoint")
        except discovery.ProviderUnavailable:
            return response  # signed out here; the provider's session ends when it expires
        if not endpoint:
            return response
        query = urlencode({
            "id_token_hint": id_token,
            "client_id": settings.OIDC_RP_CLIENT_ID,
            "post_logout_redirect_uri": request.build_absolute_uri(reverse("login")),
        })  # fmt: skip
        return HttpResponseRedirect(f"{endpoint}?{query}")
