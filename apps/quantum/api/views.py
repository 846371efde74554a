"""Quantum jobs API: submit (one or a batch), list, detail, cancel, and the simulator backends."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from apps.core.api.schema import QUEUE_UNAVAILABLE
from apps.core.permissions import WRITE_ROLES, has_role
from apps.jobs.api import cancel_schema

from ..models import QuantumJob
from ..selectors import LARGE_FIELDS, backends, jobs_visible_to
from ..services import JobBatchError, job_cancel, job_submit, jobs_submit_batch
from .filters import QuantumJobFilter
from .serializers import (
    BackendSerializer,
    JobBatchResultSerializer,
    JobBatchSubmitSerializer,
    JobSubmitSerializer,
    QuantumJobDetailSerializer,
    QuantumJobSerializer,
    QueueInfo,
    job_spec,
)


class CanSubmitJobs(BasePermission):
    message = "Only operators and administrators may submit quantum jobs."

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, *WRITE_ROLES)


def _first_message(problem) -> str:
    if isinstance(problem, dict):
        key, inner = next(iter(problem.items()))
        return _first_message(inner) if key == "non_field_errors" else f"{key}: {_first_message(inner)}"
    return _first_message(problem[0]) if isinstance(problem, list) else str(problem)


def _item_errors(fields) -> dict:
    """One item's errors by field; an item that is not an object at all (null) has only item-wide ones."""
    if not isinstance(fields, dict):
        return {"non_field_errors": fields if isinstance(fields, list) else [fields]}
    return {field: problem if isinstance(problem, list | dict) else [problem] for field, problem in fields.items()}


def batch_invalid_response(errors: dict) -> Response:
    """400 naming every invalid item by its index: ``{"detail", "code", "errors": {"3": {"source": [...]}}}``."""
    by_index = {
        str(index): _item_errors(fields) for index, fields in sorted(errors.items(), key=lambda entry: int(entry[0]))
    }
    first_index, first = next(iter(by_index.items()))
    verb = "is" if len(by_index) == 1 else "are"
    detail = f"{len(by_index)} of the jobs {verb} invalid; nothing was submitted. Job {first_index}: "
    detail += _first_message(first)
    return Response({"detail": detail, "code": "invalid", "errors": by_index}, status=status.HTTP_400_BAD_REQUEST)


ERROR_RESPONSES = {
    400: OpenApiResponse(description='Invalid job: `{"detail", "code": "invalid", "errors": {field: [message]}}`.'),
    403: OpenApiResponse(description="Not allowed (viewers and compliance officers only read)."),
    429: OpenApiResponse(description="Over the queued-jobs or daily-shots quota; the detail gives the numbers."),
    503: QUEUE_UNAVAILABLE,
}


@extend_schema_view(
    list=extend_schema(summary="Jobs the user may see (everyone's for administrators and viewers), newest first."),
    retrieve=extend_schema(summary="One job with its circuit, settings and, once completed, its counts."),
)
class QuantumJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Quantum jobs. Others' jobs are invisible (404) unless the user is an administrator or a viewer."""

    # The audit middleware names the object type of API writes after this queryset's model.
    queryset = QuantumJob.objects.all()
    filterset_class = QuantumJobFilter
    # Only indexed orders: the list must stay fast with a million jobs.
    ordering_fields = ["id", "created_at", "finished_at"]
    ordering = ["-id"]
    # Narrowed to a creation period, the list comes newest created first: see time_range_ordering.
    time_ranges = {"created_after": "created_at", "created_before": "created_at"}
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        jobs = jobs_visible_to(self.request.user).select_related("owner")
        if self.action == "list":
            # Up to 1 MiB of source per job: a page would carry megabytes it does not show.
            jobs = jobs.defer(*LARGE_FIELDS)
        return jobs

    def get_permissions(self):
        if self.action in ("create", "batch"):
            return [*super().get_permissions(), CanSubmitJobs()]
        return super().get_permissions()

    def get_serializer_class(self):
        return QuantumJobSerializer if self.action == "list" else QuantumJobDetailSerializer

    def get_serializer(self, *args, **kwargs):
        # Queue positions of every queued job shown, and the throughput, each read once per response.
        if args:
            jobs = [args[0]] if isinstance(args[0], QuantumJob) else args[0]
            kwargs["context"] = {**self.get_serializer_context(), "queue": QueueInfo(jobs)}
        return super().get_serializer(*args, **kwargs)

    def _job_response(self, job: QuantumJob, status_code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(job).data, status=status_code)

    @extend_schema(
        summary="Submit one job.",
        request=JobSubmitSerializer,
        responses={201: QuantumJobDetailSerializer, **ERROR_RESPONSES},
    )
    def create(self, request):
        """Validate and queue one job for the signed-in user."""
        body = JobSubmitSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = job_submit(owner=request.user, spec=job_spec(body.validated_data))
        response = self._job_response(job, status.HTTP_201_CREATED)
        response["Location"] = reverse("quantum:job-detail", kwargs={"pk": job.pk}, request=request)
        return response

    @extend_schema(
        summary="Submit up to 500 jobs at once: all of them or, if any is invalid, none.",
        request=JobBatchSubmitSerializer,
        responses={
            201: JobBatchResultSerializer,
            **ERROR_RESPONSES,
            400: OpenApiResponse(
                description='Invalid items by index: `{"detail", "code": "invalid", "errors": {"3": {"source": '
                "[message]}}}`; nothing was submitted. A batch over the size limit names the limit."
            ),
        },
    )
    @action(detail=False, methods=["post"])
    def batch(self, request):
        """Validate every job, then queue all of them or none; answers only the new ids, to stay fast."""
        body = JobBatchSubmitSerializer(data=request.data)
        if not body.is_valid():
            item_errors = body.errors.get("jobs")
            if isinstance(item_errors, dict):
                return batch_invalid_response(item_errors)
            raise exceptions.ValidationError(body.errors)
        specs = [job_spec(item) for item in body.validated_data["jobs"]]
        try:
            jobs = jobs_submit_batch(owner=request.user, specs=specs)
        except JobBatchError as exc:
            return batch_invalid_response(exc.errors)
        ids = [job.pk for job in jobs]
        return Response({"count": len(ids), "ids": ids}, status=status.HTTP_201_CREATED)

    @cancel_schema(
        QuantumJobDetailSerializer,
        summary="Cancel a job: a queued one at once, a running one within 2 seconds (it shows cancelling until then).",
        who_may="Only the owner (an operator) or an administrator may cancel.",
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel one job the user may see; the service decides whether they may change it."""
        job = job_cancel(job=self.get_object(), actor=request.user)
        return self._job_response(job)


class BackendListView(APIView):
    """The simulation methods, each with its largest register under the memory limit, max shots and queue length."""

    @extend_schema(responses=BackendSerializer(many=True))
    def get(self, request):
        return Response(BackendSerializer(backends(), many=True).data)
