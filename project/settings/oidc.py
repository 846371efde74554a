"""OpenID Connect single sign-on (README "SSO and passkeys"): read and checked here, the provider itself never.

The provider's endpoints come from its discovery document, which apps/accounts/oidc/discovery.py reads on first use
and caches: a provider that is down must not stop the portal from starting.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from .env import Environment

KNOWN_ROLES = ("admin", "operator", "viewer", "compliance")  # apps.core.choices.Role; settings import no apps
DEFAULT_MFA_AMR = ("mfa", "otp", "hwk", "swk", "sc", "fpt", "face", "iris", "retina", "vbm")


def role_map(env: Environment, name: str) -> dict[str, str]:
    """``group=role,group=role`` → {group: role}; every role must be one of Opsdeck's."""
    mapping: dict[str, str] = {}
    for item in env.list(name):
        group, sep, role = (part.strip() for part in item.partition("="))
        if not sep or not group or not role:
            raise ImproperlyConfigured(
                f"{name} must look like 'ops-admins=admin,ops-operators=operator', got {item!r}."
            )
        if role not in KNOWN_ROLES:
            raise ImproperlyConfigured(f"{name}: {role!r} is not a role; the roles are {', '.join(KNOWN_ROLES)}.")
        if group in mapping and mapping[group] != role:
            raise ImproperlyConfigured(f"{name} maps the group {group!r} twice.")
        mapping[group] = role
    return mapping


def oidc_settings(env: Environment) -> dict:
    """Every OIDC_* setting of the portal and of mozilla-django-oidc; SSO is off while OIDC_ISSUER is empty."""
    issuer = env.str("OIDC_ISSUER", "").rstrip("/")
    if issuer:
        parts = urlsplit(issuer)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or parts.fragment:
            raise ImproperlyConfigured(
                f"OIDC_ISSUER must be the provider's issuer URL, such as https://sso.example.com/realms/ops "
                f"(its discovery document is <issuer>/.well-known/openid-configuration), got {issuer!r}."
            )
    scopes = env.str("OIDC_SCOPES", "openid email profile")
    if "openid" not in scopes.split():
        raise ImproperlyConfigured(f"OIDC_SCOPES must include 'openid', got {scopes!r}.")
    only = env.bool("OIDC_ONLY", False)
    if only and not issuer:
        raise ImproperlyConfigured("OIDC_ONLY needs OIDC_ISSUER: without a provider nobody could sign in.")
    groups_claim = env.str("OIDC_GROUPS_CLAIM", "groups")
    if not groups_claim:
        raise ImproperlyConfigured("OIDC_GROUPS_CLAIM must name the claim holding the user's groups (default groups).")
    mfa_amr = env.list("OIDC_MFA_AMR", DEFAULT_MFA_AMR)
    return {
        "OIDC_ISSUER": issuer,
        "OIDC_ENABLED": bool(issuer),
        "OIDC_RP_CLIENT_ID": env.str("OIDC_CLIENT_ID") if issuer else "",
        "OIDC_RP_CLIENT_SECRET": env.secret("OIDC_CLIENT_SECRET") if issuer else "",
        "OIDC_RP_SCOPES": scopes,
        "OIDC_BUTTON_LABEL": env.str("OIDC_BUTTON_LABEL", "single sign-on") or "single sign-on",
        "OIDC_GROUPS_CLAIM": groups_claim,
        "OIDC_ROLE_MAP": role_map(env, "OIDC_ROLE_MAP"),
        "OIDC_MFA_AMR": mfa_amr,
        "OIDC_CREATE_USERS": env.bool("OIDC_CREATE_USERS", True),
        "OIDC_ONLY": only,
        "OIDC_BREAK_GLASS_USERS": env.list("OIDC_BREAK_GLASS_USERS"),
        "OIDC_TIMEOUT": env.int("OIDC_TIMEOUT_SECONDS", 10, minimum=1, maximum=120),
        # The discovery document and its endpoints are cached this long (a provider's keys rotate through JWKS,
        # which is read at every sign-in).
        "OIDC_DISCOVERY_CACHE_SECONDS": env.int("OIDC_DISCOVERY_CACHE_SECONDS", 3600, minimum=0, maximum=7 * 86400),
        # mozilla-django-oidc's own: code flow with PKCE (S256) and a nonce, RS256/ES256 ID tokens checked against
        # the provider's JWKS; the ID token is kept in the session for the provider's end-session endpoint.
        "OIDC_USE_PKCE": True,
        "OIDC_USE_NONCE": True,
        "OIDC_RP_SIGN_ALGO": env.choice("OIDC_SIGN_ALGO", "RS256", ("rs256", "es256", "ps256")).upper(),
        "OIDC_STORE_ID_TOKEN": True,
        "OIDC_AUTHENTICATION_CALLBACK_URL": "oidc-callback",
    }
