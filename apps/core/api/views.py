from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from ..selectors import maintenance_runs
from .serializers import MaintenanceRunSerializer

# Each app adds its entry points here.
ENTRY_POINTS = {
    "maintenance-runs": "core:maintenance-run-list",
    "maintenance-mode": "readonly:status",
    "workers": "workers:workers",
    "diagnostics": "diagnostics:bundle",
    "me": "accounts:me",
    "tokens": "auth:token-list",
    "audit-events": "audit:event-list",
    "quantum-jobs": "quantum:job-list",
    "quantum-backends": "quantum:backends",
    "registry-models": "registry:model-list",
    "registry-inference-jobs": "registry:inference-job-list",
    "backups": "backups:backup-list",
    "compliance-reports": "compliance:report-list",
    "compliance-public-key": "compliance:public-key",
    "notification-preferences": "notifications:preferences",
    "schema": "api-schema",
    "docs": "api-docs",
}


class ApiRootView(APIView):
    """Entry point of API v1: links to each app's endpoints and to the schema."""

    @extend_schema(responses=inline_serializer("ApiRoot", {name: serializers.URLField() for name in ENTRY_POINTS}))
    def get(self, request):
        return Response({name: request.build_absolute_uri(reverse(url)) for name, url in ENTRY_POINTS.items()})


class MaintenanceRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Recorded runs of scheduled maintenance tasks (staff only)."""

    serializer_class = MaintenanceRunSerializer
    permission_classes = [IsAdminUser]
    filterset_fields = ["task_name", "status"]
    ordering_fields = ["started_at", "finished_at"]
    queryset = maintenance_runs()
