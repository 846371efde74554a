"""Middleware of the portal core."""

from django.http import HttpResponse

LIVENESS_PATH = "/health/live"


class LivenessMiddleware:
    """Answer the liveness probe before host validation and HTTPS redirects.

    Container and orchestrator probes call the process by IP over plain HTTP;
    the probe only says the process serves requests, so it needs no host check.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path in (LIVENESS_PATH, LIVENESS_PATH + "/"):
            return HttpResponse("ok\n", content_type="text/plain")
        return self.get_response(request)
