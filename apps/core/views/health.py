"""Readiness probe."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from ..health import readiness_report


@never_cache
@require_safe
def ready(request):
    """200 when every required check passes, 503 otherwise; always the full report."""
    report = readiness_report()
    return JsonResponse(report, status=503 if report["status"] == "down" else 200)
