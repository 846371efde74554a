"""The workers and queues view (staff): read it, drain a worker, cancel a job. Routed at /api/v1/core/workers/
(project/api_urls.py), beside the portal core's other operational endpoints."""

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import ApiToken
from apps.accounts.sudo import sudo_is_fresh, sudo_url
from apps.core.choices import Role
from apps.core.permissions import has_role

from ..selectors import held_jobs_overview, queues_overview, workers_overview
from ..services import staff_job_cancel, worker_drain
from .serializers import (
    CancelResultSerializer,
    DrainResultSerializer,
    DrainSerializer,
    QueuesSerializer,
    RateWindowSerializer,
    WorkersSerializer,
)


class StaffOnly(BasePermission):
    message = "The workers and queues view is for staff members."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_active and request.user.is_staff)


class StaffAdministrators(BasePermission):
    message = "Only staff administrators may drain workers or cancel jobs from the workers view."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_active and user.is_staff and has_role(user, Role.ADMIN))


def _require_sudo_for_sessions(request, doing: str) -> None:
    """A browser session must be inside its sudo window, as on the page; an API token (an administrator's,
    issued for scripts) needs none."""
    if isinstance(request.auth, ApiToken) or sudo_is_fresh(request):
        return
    raise exceptions.PermissionDenied(
        f"{doing.capitalize()} from a browser session needs your password confirmed again: re-authenticate at "
        f"{sudo_url(reverse('workers_page:index'))} and try again.",
        code="reauthentication_required",
    )


def _minutes(request) -> int:
    window = RateWindowSerializer(data=request.query_params)
    window.is_valid(raise_exception=True)
    return window.validated_data["minutes"]


DRAIN_503 = OpenApiResponse(description="The worker did not confirm the drain in time (it may be stopping).")
SESSION_403 = OpenApiResponse(
    description="Not a staff administrator, or a browser session outside its sudo window (the detail links the "
    "re-authentication page). API tokens of administrators need no re-authentication."
)


class WorkersView(APIView):
    """Live workers (host, queues, concurrency, running jobs, last heartbeat, versions) and the queues."""

    permission_classes = [StaffOnly]

    @extend_schema(
        summary="Workers and queues: live workers with their running jobs, and each queue's depth and rate.",
        parameters=[RateWindowSerializer],
        responses={200: WorkersSerializer},
    )
    def get(self, request):
        minutes = _minutes(request)
        workers = workers_overview()
        body = {
            "minutes": minutes,
            "queues": queues_overview(minutes=minutes, workers=workers),
            "held_during_maintenance": held_jobs_overview(),
            "workers": workers,
        }
        return Response(WorkersSerializer(body).data)


class QueuesView(APIView):
    """Each queue: messages waiting on the broker, jobs finished per minute, live workers taking from it."""

    permission_classes = [StaffOnly]

    @extend_schema(
        summary="Queues: depth on the broker, jobs per minute over the window, consumers.",
        parameters=[RateWindowSerializer],
        responses={200: QueuesSerializer},
    )
    def get(self, request):
        minutes = _minutes(request)
        body = {
            "minutes": minutes,
            "queues": queues_overview(minutes=minutes),
            "held_during_maintenance": held_jobs_overview(),
        }
        return Response(QueuesSerializer(body).data)


class WorkerDrainView(APIView):
    """Drain a worker: it finishes what it runs and takes nothing more from its queues (audited)."""

    permission_classes = [StaffAdministrators]

    @extend_schema(
        summary="Drain a worker (staff administrators): it finishes its running jobs and takes no more.",
        request=DrainSerializer,
        responses={
            200: DrainResultSerializer,
            403: SESSION_403,
            404: OpenApiResponse(description="No live worker has this hostname."),
            503: DRAIN_503,
        },
    )
    def post(self, request):
        _require_sudo_for_sessions(request, "draining a worker")
        body = DrainSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        presence = worker_drain(hostname=body.validated_data["hostname"], actor=request.user)
        result = {
            "hostname": presence.hostname,
            "state": "draining",
            "drained_queues": presence.drained_queues,
            "draining_since": presence.draining_since,
        }
        return Response(DrainResultSerializer(result).data)


class JobCancelView(APIView):
    """Cancel any job from the workers view, through the job layer's cancel (audited)."""

    permission_classes = [StaffAdministrators]

    @extend_schema(
        summary="Cancel a job of any kind (staff administrators): a queued one at once, a running one within 2 s.",
        request=None,
        responses={
            200: CancelResultSerializer,
            403: SESSION_403,
            404: OpenApiResponse(description="No such job kind or job."),
            409: OpenApiResponse(description="The job has already finished."),
        },
    )
    def post(self, request, kind: str, job_id: int):
        _require_sudo_for_sessions(request, "cancelling a job")
        job = staff_job_cancel(kind_name=kind, job_id=job_id, actor=request.user)
        return Response(CancelResultSerializer({"kind": kind, "id": job.pk, "status": job.status}).data)
