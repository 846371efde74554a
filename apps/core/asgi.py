"""Django's ASGI handler, made to release a response's resources when streaming it fails."""

from __future__ import annotations

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler


class ClosingASGIHandler(ASGIHandler):
    """Closes the response when sending it raises, as Django already does after a clean end or a disconnect.

    Django calls ``response.close()`` only when ``send_response`` returns, so a stream that failed half-way
    (a query error, a row that does not serialise) kept its file or cursor open and, because ``request_finished``
    never fired, its database connection checked out of the pool for good: ten such requests exhausted the pool.
    """

    async def send_response(self, response, send):
        try:
            await super().send_response(response, send)
        except Exception:
            # Thread-sensitive, like Django's own close: in the request's thread, which holds its connections.
            await sync_to_async(response.close)()
            raise


def get_asgi_application() -> ClosingASGIHandler:
    """``django.core.asgi.get_asgi_application`` with the closing handler."""
    django.setup(set_prefix=False)
    return ClosingASGIHandler()
