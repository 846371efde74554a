"""Maintenance mode over the API: anyone signed in reads the status; staff administrators switch it and plan windows
from a browser session inside the sudo window.

API tokens may read but not switch: a token proves no password typed just now, and a script that drives
maintenance from a deploy pipeline runs `manage.py maintenance` on a portal host instead. These writes go on while
maintenance mode is on (apps/readonly/middleware.py), or nobody could turn it off from a browser.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import ApiToken
from apps.accounts.sudo import sudo_is_fresh, sudo_url

from ..services import (
    maintenance_may_change,
    maintenance_mode_disable,
    maintenance_mode_enable,
    maintenance_mode_status,
    maintenance_window_cancel,
    maintenance_window_schedule,
    maintenance_windows_planned,
)
from .serializers import MaintenanceSwitchSerializer, MaintenanceWindowSerializer

STATUS_SCHEMA = inline_serializer(
    "MaintenanceStatus",
    {
        "active": serializers.BooleanField(),
        "source": serializers.CharField(allow_null=True),
        "message": serializers.CharField(),
        "since": serializers.DateTimeField(allow_null=True),
        "until": serializers.DateTimeField(allow_null=True),
        "changed_by": serializers.CharField(allow_null=True),
        "window": serializers.IntegerField(allow_null=True),
        "retry_after_seconds": serializers.IntegerField(allow_null=True),
        "upcoming": serializers.ListField(child=serializers.DictField()),
        "checked_at": serializers.DateTimeField(),
    },
)


class MaintenanceReauthenticationRequired(PermissionDenied):
    default_code = "reauthentication_required"


def _require_switch_rights(request) -> None:
    """Staff administrators, in a browser session re-authenticated within the sudo window (403 otherwise)."""
    if not maintenance_may_change(request.user):
        raise PermissionDenied("Only staff administrators may turn maintenance mode on or off or plan its windows.")
    if isinstance(request.auth, ApiToken):
        raise MaintenanceReauthenticationRequired(
            "API tokens cannot switch maintenance mode: use a browser session inside the sudo window, the admin, "
            "or `manage.py maintenance` on a portal host."
        )
    if not sudo_is_fresh(request):
        raise MaintenanceReauthenticationRequired(
            f"Switching maintenance mode needs your password confirmed within the last "
            f"{settings.SUDO_WINDOW_MINUTES} minutes: re-authenticate at {sudo_url('/admin/')} and try again."
        )


class MaintenanceView(APIView):
    """GET: whether maintenance mode is on, until when, and the windows planned within a day. POST: switch it."""

    @extend_schema(responses=STATUS_SCHEMA, summary="Maintenance mode now (anyone signed in).")
    def get(self, request):
        return Response(maintenance_mode_status().as_dict())

    @extend_schema(
        request=MaintenanceSwitchSerializer,
        responses=STATUS_SCHEMA,
        summary="Turn maintenance mode on or off (staff administrators, sudo window).",
    )
    def post(self, request):
        _require_switch_rights(request)
        body = MaintenanceSwitchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data["enabled"]:
            result = maintenance_mode_enable(
                actor=request.user, message=data["message"], until=data["until"], via="api"
            )
        else:
            result = maintenance_mode_disable(actor=request.user, via="api")
        return Response(result.as_dict())


class MaintenanceWindowsView(APIView):
    """GET: the windows planned or running. POST: plan one (staff administrators, sudo window)."""

    @extend_schema(responses=MaintenanceWindowSerializer(many=True), summary="Planned maintenance windows.")
    def get(self, request):
        return Response(MaintenanceWindowSerializer(maintenance_windows_planned(), many=True).data)

    @extend_schema(
        request=MaintenanceWindowSerializer,
        responses={201: MaintenanceWindowSerializer},
        summary="Plan a maintenance window.",
    )
    def post(self, request):
        _require_switch_rights(request)
        body = MaintenanceWindowSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        window = maintenance_window_schedule(actor=request.user, via="api", **body.validated_data)
        return Response(MaintenanceWindowSerializer(window).data, status=status.HTTP_201_CREATED)


class MaintenanceWindowCancelView(APIView):
    """POST: cancel a planned or running window."""

    @extend_schema(request=None, responses=MaintenanceWindowSerializer, summary="Cancel a maintenance window.")
    def post(self, request, pk: int):
        _require_switch_rights(request)
        window = maintenance_window_cancel(actor=request.user, window_id=pk, via="api")
        return Response(MaintenanceWindowSerializer(window).data)
