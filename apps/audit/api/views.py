from datetime import UTC, datetime

from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer

from apps.core.api.pagination import NewestFirstCursorPagination
from apps.core.responses import DatabaseStreamingResponse

from ..export import EXPORT_FORMATS, export_chunks
from ..permissions import CanReadAuditTrail
from ..selectors import events_between
from .filters import AuditEventFilter
from .serializers import AuditEventSerializer

FORMAT_ERROR = f"format must be one of {', '.join(EXPORT_FORMATS)}"


class ExportNegotiation(DefaultContentNegotiation):
    """On the export, ``?format=`` names the file format, not a renderer; errors are always JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def export_filename(*, since: datetime | None, until: datetime | None, fmt: str) -> str:
    start = _stamp(since) if since is not None else "start"
    return f"audit-events-{start}-{_stamp(until or timezone.now())}.{fmt}"


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit trail, newest first, with its hash chain; read-only."""

    serializer_class = AuditEventSerializer
    permission_classes = [CanReadAuditTrail]
    pagination_class = NewestFirstCursorPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = AuditEventFilter
    # Narrowed to a period, the trail pages newest first by time: see time_range_ordering.
    time_ranges = {"since": "timestamp", "until": "timestamp"}
    queryset = events_between()

    @extend_schema(
        operation_id="audit_events_export",
        filters=True,
        parameters=[
            OpenApiParameter(
                "format", OpenApiTypes.STR, enum=list(EXPORT_FORMATS), required=True, description="File format."
            )
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, "application/x-ndjson"): OpenApiTypes.BINARY,
            400: OpenApiResponse(description="Missing or unknown format, or an invalid filter value."),
        },
    )
    @action(
        detail=False,
        methods=["get"],
        renderer_classes=[JSONRenderer],
        content_negotiation_class=ExportNegotiation,
    )
    def export(self, request, *args, **kwargs):
        """Stream the filtered events, oldest first, as CSV or JSON Lines (with each row's hashes)."""
        fmt = request.query_params.get("format", "")
        if fmt not in EXPORT_FORMATS:
            raise ValidationError(FORMAT_ERROR)
        filterset = DjangoFilterBackend().get_filterset(request, self.get_queryset(), self)
        if not filterset.is_valid():
            raise translate_validation(filterset.errors)
        since, until = filterset.period()
        response = DatabaseStreamingResponse(export_chunks(filterset.qs, fmt), content_type=EXPORT_FORMATS[fmt])
        filename = export_filename(since=since, until=until, fmt=fmt)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
