"""Browser access (README "Browser API access: CORS and Content-Security-Policy"): which other origins' pages may call
the API (CORS, django-cors-headers) and what every page may load and run (Content-Security-Policy, django-csp 4).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from csp.constants import NONCE, NONE, SELF, UNSAFE_EVAL, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from .env import Environment

# The API only: pages, the admin and sign-in never answer another origin's scripts.
CORS_URLS_REGEX = r"^/api/.*$"
# What a script on a listed origin may read of an answer besides the CORS-safelisted headers: when to retry (429,
# 503), where a created object lives, a download's name, a report's or backup's digest and signing key.
CORS_EXPOSE_HEADERS = (
    "Retry-After",
    "Location",
    "Content-Disposition",
    "X-Request-ID",
    "X-Report-SHA256",
    "X-Report-Key-Fingerprint",
    "X-Key-Fingerprint",
    "X-Backup-SHA256",
)
_HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def web_origin(value: str, *, name: str) -> str:
    """``value`` checked to be an origin, ``scheme://host[:port]`` with an http(s) scheme and nothing after it;
    returned as browsers send it (lower case, no default port)."""
    example = "such as https://notebooks.example.com or http://localhost:8888"
    if "*" in value:
        raise ImproperlyConfigured(
            f"{name} must list each origin explicitly ({example}); a wildcard is refused: it would let any site's "
            "scripts call the API."
        )
    problem = (
        f"{name}: {value!r} is not an origin; give scheme://host[:port] with http or https and no path, {example}."
    )
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(problem) from None
    host = parts.hostname or ""
    try:
        is_ip = bool(ipaddress.ip_address(host))
    except ValueError:
        is_ip = False
    if (
        parts.scheme not in _DEFAULT_PORTS
        or not (is_ip or (_HOST_NAME.match(host) and not host.replace(".", "").isdigit()))
        or parts.username is not None
        or parts.path
        or parts.query
        or parts.fragment
        or value.endswith(("?", "#"))
    ):
        raise ImproperlyConfigured(problem)
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{netloc}" + (f":{port}" if port and port != _DEFAULT_PORTS[parts.scheme] else "")


def cors_settings(env: Environment) -> dict:
    """django-cors-headers' settings: CORS_ALLOWED_ORIGINS (comma-separated origins, none by default) and
    CORS_ALLOW_CREDENTIALS (cookies on cross-origin calls; off by default, a token needs none)."""
    origins = [web_origin(origin, name="CORS_ALLOWED_ORIGINS") for origin in env.list("CORS_ALLOWED_ORIGINS")]
    return {
        "CORS_ALLOWED_ORIGINS": list(dict.fromkeys(origins)),
        "CORS_ALLOW_CREDENTIALS": env.bool("CORS_ALLOW_CREDENTIALS", False),
        "CORS_URLS_REGEX": CORS_URLS_REGEX,
        # django-cors-headers' defaults (accept, authorization, content-type, user-agent, x-csrftoken,
        # x-requested-with, ...) already carry the Authorization header a token travels in.
        "CORS_EXPOSE_HEADERS": list(CORS_EXPOSE_HEADERS),
        # Browsers cache a preflight this long (Chromium caps it at 2 hours).
        "CORS_PREFLIGHT_MAX_AGE": 7200,
    }


def csp_settings(env: Environment) -> dict:
    """django-csp's CONTENT_SECURITY_POLICY (or, with CSP_REPORT_ONLY, CONTENT_SECURITY_POLICY_REPORT_ONLY) and
    the per-path allowances applied by apps.core.csp.ContentSecurityPolicyMiddleware."""
    directives = {
        "default-src": [SELF],
        # The admin theme's Alpine.js (every page's shell: sidebar, theme switch, dropdowns) evaluates the
        # expressions in its x-* attributes with the Function constructor, which needs 'unsafe-eval'.
        # Scripts themselves still come only from the portal or carry this response's nonce.
        "script-src": [SELF, NONCE, UNSAFE_EVAL],
        # No inline event handlers (onclick=...) anywhere.
        "script-src-attr": [NONE],
        # Style sheets from the portal; a <style> element only with this response's nonce; no style="..." attributes
        # (apps.core.csp allows those on the admin's and the browsable API's paths only).
        "style-src": [SELF, NONCE],
        "style-src-attr": [NONE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        # Live pages open websockets to the portal itself: 'self' covers ws: and wss: of the same host and port.
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        # Plus the OIDC provider's origin when single sign-on is on (apps.core.csp): signing out posts to the portal,
        # which redirects to the provider's end-session endpoint, and browsers hold that redirect to form-action.
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
    policy = {"DIRECTIVES": directives}
    report_only = env.bool("CSP_REPORT_ONLY", False)
    return {
        "CONTENT_SECURITY_POLICY_REPORT_ONLY" if report_only else "CONTENT_SECURITY_POLICY": policy,
        # Directives replaced on the paths they start with: the Django admin's theme (django-unfold) and Django REST
        # framework's browsable API set style="..." attributes in their own templates and scripts.
        "CONTENT_SECURITY_POLICY_PATH_ALLOWANCES": {
            "/admin/": {"style-src-attr": [UNSAFE_INLINE]},
            "/api/": {"style-src-attr": [UNSAFE_INLINE]},
        },
    }
