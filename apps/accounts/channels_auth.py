"""API tokens on websockets: `Authorization: Bearer <token>`, or the subprotocols ["bearer", <token>].

Browsers cannot set headers on a websocket, so scripts running in one pass the
token as the second subprotocol. The query string is never read: URLs end up
in access logs.
"""

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser

from apps.core.consumers import BEARER_SUBPROTOCOL
from apps.core.request_context import client_ip_from

from .tokens import TokenRejected, token_authenticate


def _header(scope, name: bytes) -> str:
    return next((value.decode("latin-1") for key, value in scope.get("headers", ()) if key == name), "")


def bearer_secret(scope) -> str:
    """The token a websocket handshake carries, or ""."""
    scheme, _, secret = _header(scope, b"authorization").partition(" ")
    if scheme.lower() == BEARER_SUBPROTOCOL and secret.strip():
        return secret.strip()
    subprotocols = list(scope.get("subprotocols") or ())
    if len(subprotocols) == 2 and subprotocols[0] == BEARER_SUBPROTOCOL:
        return subprotocols[1]
    return ""


class TokenAuthMiddleware(BaseMiddleware):
    """Sign a websocket in as a token's owner; a bad token leaves it anonymous (and so refused)."""

    async def __call__(self, scope, receive, send):
        secret = bearer_secret(scope)
        if secret:
            remote = (scope.get("client") or ("", 0))[0]
            address = client_ip_from(remote, _header(scope, b"x-forwarded-for"))
            try:
                token = await database_sync_to_async(token_authenticate)(secret=secret, client_ip=address, write=False)
            except TokenRejected:
                scope = {**scope, "user": AnonymousUser()}
            else:
                scope = {**scope, "user": token.owner, "auth_token": token}
        return await super().__call__(scope, receive, send)
