"""Middleware of the portal core."""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpResponse

LIVENESS_PATHS = ("/health/live", "/health/live/")


class LivenessMiddleware:
    """Answer the liveness probe before host validation and HTTPS redirects.

    Container and orchestrator probes call the process by IP over plain HTTP;
    the probe only says the process serves requests, so it needs no host check.
    Being async-capable, it answers under ASGI without a hop to a worker thread.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        if request.path in LIVENESS_PATHS:
            return _alive()
        return self.get_response(request)

    async def _acall(self, request):
        if request.path in LIVENESS_PATHS:
            return _alive()
        return await self.get_response(request)


def _alive() -> HttpResponse:
    return HttpResponse("ok\n", content_type="text/plain")
