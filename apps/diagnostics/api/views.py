"""The diagnostics bundle through the API (staff): tokens of staff members as they are, browser sessions inside
the sudo window as on the page."""

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from apps.accounts.models import ApiToken
from apps.accounts.sudo import sudo_is_fresh, sudo_url
from apps.core.api.downloads import DownloadNegotiation

from ..services import diagnostics_bundle_build
from ..views import bundle_response


class StaffOnly(BasePermission):
    message = "The diagnostics bundle is for staff members."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_active and request.user.is_staff)


class DiagnosticsBundleView(APIView):
    """A zip of JSON files: versions, masked settings, health, migrations, queues, workers, maintenance runs,
    disk usage, audit chain status, user counts."""

    permission_classes = [StaffOnly]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = DownloadNegotiation

    @extend_schema(
        summary="Download the diagnostics bundle (staff; browser sessions inside the sudo window). Audited.",
        responses={
            (200, "application/zip"): OpenApiTypes.BINARY,
            403: OpenApiResponse(
                description="Not staff, or a browser session outside its sudo window (the detail links the "
                "re-authentication page)."
            ),
        },
    )
    def get(self, request):
        if not isinstance(request.auth, ApiToken) and not sudo_is_fresh(request):
            raise exceptions.PermissionDenied(
                "Downloading the diagnostics bundle from a browser session needs your password confirmed again: "
                f"re-authenticate at {sudo_url(reverse('diagnostics_page:download'))} and try again.",
                code="reauthentication_required",
            )
        return bundle_response(diagnostics_bundle_build(actor=request.user, via="api"))
