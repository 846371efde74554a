"""DRF authentication with `Authorization: Bearer <token>`."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from apps.core.request_context import client_ip

from .tokens import TokenRejected, token_authenticate

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class BearerTokenAuthentication(BaseAuthentication):
    """Accepts API tokens; 401 for a bad, expired or revoked token, 403 for scope or address."""

    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        try:
            token = token_authenticate(
                secret=parts[1].decode("ascii", "replace"),
                client_ip=client_ip(request._request),
                write=request.method not in SAFE_METHODS,
            )
        except TokenRejected as rejected:
            if rejected.status == 401:
                raise exceptions.AuthenticationFailed(str(rejected)) from None
            raise exceptions.PermissionDenied(str(rejected)) from None
        return token.owner, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Describes the bearer token in the OpenAPI schema."""

    target_class = BearerTokenAuthentication
    name = "bearerToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An Opsdeck API token: odk_<prefix>_<secret>."}
