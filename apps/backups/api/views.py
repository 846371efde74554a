"""Backups API (administrators): list, detail, create, verify, and inside the sudo window the file and its manifest.

Compliance officers read the list and the details (sizes, checksums, row counts, verification reports) as backup
evidence; they cannot create, verify or download. Creating runs synchronously for now: the request returns when the
backup is stored (seconds for a portal-sized database); a nightly beat task makes the scheduled ones.
"""

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.reverse import reverse as api_reverse

from apps.accounts.api.sudo import require_fresh_second_factor
from apps.core.api.downloads import DownloadNegotiation
from apps.core.choices import Role
from apps.core.permissions import has_role
from apps.core.responses import StreamedFileResponse

from ..choices import BackupTrigger
from ..models import Backup
from ..restore import backup_verify
from ..services import backup_create, backup_file_open, backup_manifest
from .serializers import BackupDetailSerializer, BackupManifestSerializer, BackupSerializer, download_name

# The actions a compliance officer may use: reading the evidence, not the data.
EVIDENCE_ACTIONS = frozenset({"list", "retrieve"})


class BackupAccess(BasePermission):
    """Administrators do everything; compliance officers only read the list and the details."""

    def has_permission(self, request, view) -> bool:
        if view.action in EVIDENCE_ACTIONS and request.method == "GET":
            self.message = "Backups are read by administrators and, as evidence, by compliance officers."
            return has_role(request.user, Role.ADMIN, Role.COMPLIANCE)
        self.message = "Only administrators may create, verify or download backups."
        return has_role(request.user, Role.ADMIN)


def _require_sudo_window(request, backup: Backup) -> None:
    """The file leaves the portal only for a browser session that gave its password and a code just now."""
    next_url = reverse("admin:backups_backup_change", args=[backup.pk])
    require_fresh_second_factor(request, doing="downloading a backup", next_url=next_url)


ERROR_403 = OpenApiResponse(description="Not an administrator (compliance officers only list and read).")
ERROR_404 = OpenApiResponse(description="No such backup.")
SUDO_403 = OpenApiResponse(
    description="Not an administrator, an API token, or no re-authentication (password and a fresh authenticator "
    "code) within SUDO_WINDOW_MINUTES; the detail gives the re-authentication page."
)
CONFLICT_409 = OpenApiResponse(description="The backup has no stored file (running, failed or pruned).")


@extend_schema_view(
    list=extend_schema(summary="Backups, newest first (administrators; compliance officers as evidence)."),
    retrieve=extend_schema(summary="One backup with its checksum, key id, row counts and verification report."),
)
class BackupViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Database backups: encrypted, checksummed files in the backup storage, verified by real restores."""

    # The audit middleware names the object type of API writes after this queryset's model.
    queryset = Backup.objects.all()
    permission_classes = [BackupAccess]
    filterset_fields = ["status", "trigger"]
    ordering_fields = ["id", "started_at", "size_bytes"]
    ordering = ["-started_at", "-id"]
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        backups = Backup.objects.select_related("triggered_by")
        if self.action == "list":
            # Row counts and reports hold an entry per table: the list does not show them.
            backups = backups.defer("row_counts", "migrations", "verification")
        return backups

    def get_serializer_class(self):
        return BackupSerializer if self.action == "list" else BackupDetailSerializer

    def _detail_response(self, backup: Backup, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(BackupDetailSerializer(backup, context=self.get_serializer_context()).data, status_code)

    @extend_schema(
        summary="Take a backup now; answers when it is stored (synchronous).",
        request=None,
        responses={
            201: BackupDetailSerializer,
            403: ERROR_403,
            409: OpenApiResponse(
                description="The backup failed: pg_dump missing or older than the server, no key configured, "
                "storage full or not writable. A failed backup is listed with its error."
            ),
        },
    )
    def create(self, request):
        backup = backup_create(trigger=BackupTrigger.USER, actor=request.user)
        response = self._detail_response(backup, status.HTTP_201_CREATED)
        response["Location"] = api_reverse("backups:backup-detail", kwargs={"pk": backup.pk}, request=request)
        return response

    @extend_schema(
        summary="Verify a backup by restoring it into a scratch database; answers with the report.",
        request=None,
        responses={
            200: BackupDetailSerializer,
            403: ERROR_403,
            404: ERROR_404,
            409: OpenApiResponse(description="The backup cannot be verified (running, failed or pruned)."),
        },
    )
    @action(detail=True, methods=["post"])
    def verify(self, request, pk=None):
        """A failed verification is a 200 too: the status is then verify_failed and the report says why."""
        backup = backup_verify(backup=self.get_object(), actor=request.user)
        return self._detail_response(backup)

    @extend_schema(
        summary="Download the encrypted file (administrators, inside the sudo window).",
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
        backup = self.get_object()
        _require_sudo_window(request, backup)
        file = backup_file_open(backup=backup, actor=request.user)
        response = StreamedFileResponse(
            file, as_attachment=True, filename=download_name(backup), content_type="application/octet-stream"
        )
        response["X-Backup-SHA256"] = backup.sha256
        return response

    @extend_schema(
        summary="The manifest of the encrypted file: checksum, size, key id, format, database and row counts.",
        responses={200: BackupManifestSerializer, 403: SUDO_403, 404: ERROR_404, 409: CONFLICT_409},
    )
    @action(detail=True, methods=["get"])
    def manifest(self, request, pk=None):
        backup = self.get_object()
        _require_sudo_window(request, backup)
        backup = backup_manifest(backup=backup, actor=request.user)
        return Response(BackupManifestSerializer(backup).data)
