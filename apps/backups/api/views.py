"""Backups API (administrators): list, detail, create, verify, and inside the sudo window the file and its manifest;
the jobs that create and verify backups.

Compliance officers read the list and the details (sizes, checksums, row counts, verification reports) as backup
evidence; they cannot create, verify or download. Creating and verifying queue a job for a worker and answer 202
with it; the job's page (and the /ws/jobs/ stream) follows it. A nightly beat task makes the scheduled backups.
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
from apps.jobs.api import cancel_schema

from ..choices import BackupOperation
from ..jobs import backup_job_cancel, backup_job_request
from ..models import Backup, BackupJob
from ..services import backup_file_open, backup_manifest
from .serializers import (
    BackupDetailSerializer,
    BackupJobSerializer,
    BackupManifestSerializer,
    BackupSerializer,
    download_name,
)

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


def backup_file_response(backup: Backup, file) -> StreamedFileResponse:
    """The encrypted file as a download under its own name, its SHA-256 in a header to check it against."""
    response = StreamedFileResponse(
        file, as_attachment=True, filename=download_name(backup), content_type="application/octet-stream"
    )
    response["X-Backup-SHA256"] = backup.sha256
    return response


ERROR_403 = OpenApiResponse(description="Not an administrator (compliance officers only list and read).")
ERROR_404 = OpenApiResponse(description="No such backup.")
SUDO_403 = OpenApiResponse(
    description="Not an administrator, an API token, or no re-authentication (password and a fresh authenticator "
    "code) within SUDO_WINDOW_MINUTES; the detail gives the re-authentication page."
)
CONFLICT_409 = OpenApiResponse(description="The backup has no stored file (running, failed or pruned).")
QUEUE_503 = OpenApiResponse(description="The task queue is unavailable: the job was marked failed; retry later.")


def _job_accepted(request, job: BackupJob) -> Response:
    """202 with the queued job, and its address in Location."""
    response = Response(BackupJobSerializer(job, context={"request": request}).data, status.HTTP_202_ACCEPTED)
    response["Location"] = api_reverse("backups:backup-job-detail", kwargs={"pk": job.pk}, request=request)
    return response


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

    @extend_schema(
        summary="Queue a backup job: a worker takes the backup; answers 202 with the job (Location: its address).",
        request=None,
        responses={
            202: BackupJobSerializer,
            403: ERROR_403,
            409: OpenApiResponse(description="No backup key is configured (BACKUP_ENCRYPTION_KEY): nothing queued."),
            503: QUEUE_503,
        },
    )
    def create(self, request):
        """A backup that then fails (pg_dump missing, storage full) fails its job, and is listed with its error."""
        return _job_accepted(request, backup_job_request(BackupOperation.CREATE, request.user))

    @extend_schema(
        summary="Queue a job that verifies the backup by restoring it into a scratch database; answers 202 with it.",
        request=None,
        responses={
            202: BackupJobSerializer,
            403: ERROR_403,
            404: ERROR_404,
            409: OpenApiResponse(
                description="The backup cannot be verified (running, failed or pruned), or no backup key is "
                "configured: nothing queued."
            ),
            503: QUEUE_503,
        },
    )
    @action(detail=True, methods=["post"])
    def verify(self, request, pk=None):
        """The job completes once the verification ran: its backup is then verified or verify_failed, with the
        report saying why."""
        job = backup_job_request(BackupOperation.VERIFY, request.user, backup=self.get_object())
        return _job_accepted(request, job)

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
        return backup_file_response(backup, backup_file_open(backup=backup, actor=request.user))

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


class BackupJobAccess(BasePermission):
    message = "Only administrators may see or cancel backup jobs."

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, Role.ADMIN)


@extend_schema_view(
    list=extend_schema(summary="Backup jobs (create, verify), newest first (administrators)."),
    retrieve=extend_schema(
        summary="One backup job: status, bytes written, error, and its backup (the result).",
        responses={200: BackupJobSerializer, 403: ERROR_403, 404: OpenApiResponse(description="No such job.")},
    ),
)
class BackupJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Jobs that create and verify backups on a worker: follow one here or on /ws/jobs/backup/<id>/."""

    queryset = BackupJob.objects.all()
    serializer_class = BackupJobSerializer
    permission_classes = [BackupJobAccess]
    filterset_fields = ["status", "operation"]
    ordering_fields = ["id", "created_at"]
    ordering = ["-id"]
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        # The backup's row counts and report hold an entry per table: the job shows the backup's list row.
        return BackupJob.objects.select_related("owner", "backup__triggered_by").defer(
            "backup__row_counts", "backup__migrations", "backup__verification"
        )

    @cancel_schema(
        BackupJobSerializer,
        summary="Cancel a job: a queued one at once; a running create within 2 seconds (pg_dump is stopped); a "
        "running verification only until its scratch restore starts.",
        who_may=ERROR_403.description,
        conflict="The job has finished, or its restore has started (no longer cancellable).",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = backup_job_cancel(self.get_object(), actor=request.user)
        return Response(BackupJobSerializer(job, context=self.get_serializer_context()).data)
