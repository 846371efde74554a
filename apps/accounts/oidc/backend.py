"""mozilla-django-oidc's backend with the endpoints of the cached discovery document and Opsdeck's user matching.

The package reads its endpoints from settings when a backend is built; here they come from the provider's discovery
document when a callback arrives. The ID token's signature is checked against the provider's JWKS, its nonce against
the session's, and (added here) its issuer and audience against ours. Users are matched by (issuer, sub) only.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from . import discovery, services

BACKEND_PATH = "apps.accounts.oidc.backend.OidcBackend"


class OidcBackend(OIDCAuthenticationBackend):
    """Signs in the user of an authorization code (callback only); every other authenticate() call gets None."""

    def __init__(self, *args, **kwargs):
        # Not the parent's: it reads endpoint settings that Opsdeck does not have (they are in the discovery document).
        self.UserModel = get_user_model()

    def authenticate(self, request, **kwargs):
        if request is None or "nonce" not in kwargs or not settings.OIDC_ENABLED:
            return None
        configuration = discovery.provider_configuration()
        self.OIDC_OP_TOKEN_ENDPOINT = configuration["token_endpoint"]
        self.OIDC_OP_USER_ENDPOINT = configuration.get("userinfo_endpoint")
        self.OIDC_OP_JWKS_ENDPOINT = configuration["jwks_uri"]
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None
        return super().authenticate(request, **kwargs)

    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)  # signature (JWKS), expiry, nonce
        if str(payload.get("iss", "")).rstrip("/") != settings.OIDC_ISSUER:
            raise SuspiciousOperation("The ID token was issued by another provider than OIDC_ISSUER.")
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if settings.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("The ID token was issued for another client.")
        if len(audiences) > 1 and payload.get("azp") != settings.OIDC_RP_CLIENT_ID:
            raise SuspiciousOperation("The ID token's authorised party is another client.")
        return payload

    def get_or_create_user(self, access_token, id_token, payload):
        claims = dict(payload)
        if self.OIDC_OP_USER_ENDPOINT and access_token:
            userinfo = self.get_userinfo(access_token, id_token, payload)
            if userinfo.get("sub") != payload.get("sub"):
                raise SuspiciousOperation("The provider's userinfo is about another subject than the ID token.")
            for name, value in userinfo.items():
                claims.setdefault(name, value)  # the signed ID token wins
        # The callback view reads how the provider authenticated the user (amr, auth_time).
        self.request.oidc_claims = claims
        user, _identity = services.oidc_user_sign_in(claims=claims, request=self.request)
        return user
