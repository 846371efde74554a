"""The Content-Security-Policy of every response (README "Browser API access: CORS and Content-Security-Policy").

django-csp's middleware with three additions: every HTML page's policy carries a fresh nonce (django-csp adds one only
when a template asked for it, so a page would otherwise have no way to run an inline script the day it needs one,
and the policy would differ from page to page), the few directives the admin theme and the browsable API need
loosened are replaced on their paths only (CONTENT_SECURITY_POLICY_PATH_ALLOWANCES), and the OIDC provider's origin
joins form-action while single sign-on is on.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase


def path_allowances(path: str) -> dict[str, list[str]]:
    """The directives replaced for ``path``: those of every CONTENT_SECURITY_POLICY_PATH_ALLOWANCES prefix it
    starts with."""
    replaced: dict[str, list[str]] = {}
    for prefix, directives in getattr(settings, "CONTENT_SECURITY_POLICY_PATH_ALLOWANCES", {}).items():
        if path.startswith(prefix):
            replaced.update(directives)
    return replaced


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with a nonce in every HTML page's policy and the per-path allowances."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        if response.get("Content-Type", "").startswith("text/html") and hasattr(request, "csp_nonce"):
            str(request.csp_nonce)  # makes the nonce now, if no template did
        parts = super().get_policy_parts(request, response, report_only=report_only)
        allowances = path_allowances(request.path_info)
        if allowances:
            parts.replace = {**allowances, **(parts.replace or {})}
        issuer = getattr(settings, "OIDC_ISSUER", "")
        if issuer:
            # Signing out after single sign-on posts here, and the answer redirects to the provider's end-session
            # endpoint (on the issuer's origin): browsers hold a form's redirects to form-action too.
            origin = urlsplit(issuer)
            parts.update = {**(parts.update or {}), "form-action": [f"{origin.scheme}://{origin.netloc}"]}
        return parts
