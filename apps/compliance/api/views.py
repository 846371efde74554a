"""Compliance reports API: request a report, follow it, download the signed file and its manifest, and fetch the
public key that verifies the signatures.

Only compliance officers and administrators see reports at all. Requesting and downloading also need a browser
session that confirmed the password and an authenticator code within SUDO_WINDOW_MINUTES (API tokens are
refused): evidence about every account leaves the portal only after a fresh second factor.
"""

from types import SimpleNamespace

from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.reverse import reverse as api_reverse
from rest_framework.views import APIView

from apps.accounts.api.sudo import require_fresh_second_factor
from apps.core.api.downloads import DownloadNegotiation
from apps.core.api.errors import ServiceUnavailable
from apps.core.api.schema import QUEUE_UNAVAILABLE, ApiErrorSerializer
from apps.core.responses import StreamedFileResponse
from apps.jobs.api import cancel_schema

from ..models import Report
from ..selectors import report_access_allowed, reports_visible_to
from ..services import report_cancel, report_download, report_manifest, report_request
from .serializers import ReportDetailSerializer, ReportRequestSerializer, ReportSerializer

CONTENT_TYPES = {"pdf": "application/pdf", "json": "application/json", "csv": "text/csv", "zip": "application/zip"}


def report_file_response(report: Report, file, filename: str) -> StreamedFileResponse:
    """A report's file as an attachment, with its SHA-256 and the signing key's fingerprint as headers."""
    extension = filename.rsplit(".", 1)[-1]
    response = StreamedFileResponse(
        file,
        as_attachment=True,
        filename=filename,
        content_type=CONTENT_TYPES.get(extension, "application/octet-stream"),
    )
    response["X-Report-SHA256"] = report.sha256
    response["X-Report-Key-Fingerprint"] = report.key_fingerprint
    return response


def report_manifest_response(report: Report, actor) -> JsonResponse:
    """A completed report's signed manifest as a ``.json`` attachment named after the report's file (audited)."""
    manifest = report_manifest(report=report, actor=actor)
    response = JsonResponse(manifest, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="{manifest.get("file_name", report.pk)}.manifest.json"'
    return response


class FormatIsAFilter(DefaultContentNegotiation):
    """On the report list ``?format=pdf`` is the filter on the reports' format: it must not pick a renderer (there
    is none named pdf, so the list answered 404)."""

    settings = SimpleNamespace(URL_FORMAT_OVERRIDE=None)


class ReportAccess(BasePermission):
    message = "Compliance reports are for compliance officers and administrators."

    def has_permission(self, request, view) -> bool:
        return report_access_allowed(request.user)


def require_sudo_window(request, doing: str) -> None:
    """Requesting or downloading evidence: only a browser session with a fresh password and authenticator code."""
    require_fresh_second_factor(request, doing=doing, next_url=reverse("compliance_page:index"))


ERROR_403 = OpenApiResponse(description="Not a compliance officer or administrator.")
ERROR_404 = OpenApiResponse(description="No such report.")
SUDO_403 = OpenApiResponse(
    description="Not a compliance officer or administrator, an API token, or no re-authentication (password and a "
    "fresh authenticator code) within SUDO_WINDOW_MINUTES; the detail gives the re-authentication page."
)
CONFLICT_409 = OpenApiResponse(description="The report has no file (queued, running, failed or cancelled).")


@extend_schema_view(
    list=extend_schema(summary="Compliance reports, newest first (compliance officers and administrators)."),
    retrieve=extend_schema(summary="One report: status, progress, size, SHA-256, signature, key, row counts."),
)
class ReportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Signed evidence reports: access reviews, MFA coverage, authentication failures, the audit trail, …"""

    # The audit middleware names the object type of API writes after this queryset's model.
    queryset = Report.objects.all()
    permission_classes = [ReportAccess]
    content_negotiation_class = FormatIsAFilter
    filterset_fields = ["kind", "format", "status", "scheduled"]
    ordering_fields = ["id", "created_at", "period_start", "size_bytes"]
    ordering = ["-created_at", "-id"]
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        reports = reports_visible_to(self.request.user)
        return reports.defer("manifest") if self.action == "list" else reports

    def get_serializer_class(self):
        if self.action == "create":
            return ReportRequestSerializer
        return ReportSerializer if self.action == "list" else ReportDetailSerializer

    @extend_schema(
        summary="Request a report; it is generated in the background (watch it on /ws/jobs/ or poll the detail).",
        request=ReportRequestSerializer,
        responses={
            202: ReportDetailSerializer,
            400: OpenApiResponse(
                description="Unknown kind or format, a period that ends before it starts, in the future or longer "
                "than REPORT_MAX_PERIOD_DAYS, or bad filters; the detail names the limit."
            ),
            403: SUDO_403,
            503: QUEUE_UNAVAILABLE,
        },
    )
    def create(self, request):
        require_sudo_window(request, "generating a report")
        body = ReportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = body.validated_data
        report = report_request(
            kind=values["kind"],
            fmt=values["format"],
            period_start=values["period_start"],
            period_end=values["period_end"],
            filters=values["filters"],
            actor=request.user,
        )
        response = Response(
            ReportDetailSerializer(report, context=self.get_serializer_context()).data, status.HTTP_202_ACCEPTED
        )
        response["Location"] = api_reverse("compliance:report-detail", kwargs={"pk": report.pk}, request=request)
        return response

    @extend_schema(
        summary="Download the signed report file (inside the sudo window).",
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            403: SUDO_403,
            404: ERROR_404,
            409: CONFLICT_409,
        },
    )
    @action(
        detail=True, methods=["get"], renderer_classes=[JSONRenderer], content_negotiation_class=DownloadNegotiation
    )
    def download(self, request, pk=None):
        report = self.get_object()
        require_sudo_window(request, "downloading a report")
        file, filename = report_download(report=report, actor=request.user)
        return report_file_response(report, file, filename)

    @extend_schema(
        summary="The manifest: kind, parameters, generated at/by, row counts, summaries, SHA-256, signature, key "
        "(an attachment; each hand-out is audited).",
        responses={
            200: OpenApiResponse(response=OpenApiTypes.OBJECT, description="The manifest stored beside the file."),
            403: ERROR_403,
            404: ERROR_404,
            409: CONFLICT_409,
        },
    )
    @action(detail=True, methods=["get"])
    def manifest(self, request, pk=None):
        return report_manifest_response(self.get_object(), request.user)

    @cancel_schema(
        ReportDetailSerializer,
        summary="Cancel a report: a queued one at once, one being generated at its next section or 1,000 rows.",
        who_may="Only who asked for the report or an administrator may cancel it.",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        report = report_cancel(report=self.get_object(), actor=request.user)
        return Response(ReportDetailSerializer(report, context=self.get_serializer_context()).data)


class PublicKeyView(APIView):
    """The Ed25519 public key that verifies every report's signature (PEM); public, as auditors need it."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="The public key (PEM) that verifies report signatures; its fingerprint is in each manifest.",
        responses={
            (200, "application/x-pem-file"): OpenApiTypes.STR,
            503: OpenApiResponse(response=ApiErrorSerializer, description="Report signing is not set up."),
        },
    )
    def get(self, request):
        from ..signing import SigningKeyError, key_fingerprint, public_key_pem

        try:
            pem, fingerprint = public_key_pem(), key_fingerprint()
        except SigningKeyError as exc:
            raise ServiceUnavailable(f"Report signing is not set up on this portal: {exc}") from None
        response = HttpResponse(pem, content_type="application/x-pem-file")
        response["Content-Disposition"] = 'inline; filename="opsdeck-report-signing.pub.pem"'
        response["X-Key-Fingerprint"] = fingerprint
        return response
