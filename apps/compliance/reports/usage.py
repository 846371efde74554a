"""Usage in the period, and everything stored about one person (a data-subject access request)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from apps.accounts.models import ApiToken, User, UserSession
from apps.accounts.oidc.models import ProviderMfaDevice
from apps.audit.hashing import canonical_timestamp
from apps.audit.models import AuditEvent
from apps.jobs.choices import JobStatus
from apps.quantum.models import QuantumJob
from apps.registry.models import InferenceJob

from .base import CHUNK_SIZE, ReportParams, Section, iso, joined, yes_no

_QUANTUM_COUNTS = {
    "jobs": Count("id"),
    "completed": Count("id", filter=Q(status=JobStatus.COMPLETED)),
    "failed": Count("id", filter=Q(status=JobStatus.FAILED)),
    "cancelled": Count("id", filter=Q(status=JobStatus.CANCELLED)),
    "shots": Coalesce(Sum("shots"), 0),
}
_INFERENCE_COUNTS = {
    "jobs": Count("id"),
    "completed": Count("id", filter=Q(status=JobStatus.COMPLETED)),
    "failed": Count("id", filter=Q(status=JobStatus.FAILED)),
    "cancelled": Count("id", filter=Q(status=JobStatus.CANCELLED)),
    "rows": Coalesce(Sum("progress_total"), 0),
    "rows_done": Coalesce(Sum("progress_done"), 0),
}


def usage(params: ReportParams) -> Iterator[Section]:
    """Quantum jobs and shots per user, inference jobs and rows per model, of jobs submitted in the period."""
    period = Q(created_at__gte=params.period_start, created_at__lt=params.period_end)
    quantum = QuantumJob.objects.filter(period)
    per_user = quantum.values("owner__username").annotate(**_QUANTUM_COUNTS).order_by("owner__username")
    quantum_totals = quantum.aggregate(**_QUANTUM_COUNTS, users=Count("owner", distinct=True))
    yield Section(
        name="quantum",
        title="Quantum jobs per user",
        columns=["username", "jobs", "completed", "failed", "cancelled", "shots"],
        rows=[[row["owner__username"], *(row[name] for name in _QUANTUM_COUNTS)] for row in per_user],
        summary={
            "quantum jobs": quantum_totals["jobs"],
            "shots": quantum_totals["shots"],
            "users running quantum jobs": quantum_totals["users"],
        },
    )
    inference = InferenceJob.objects.filter(period)
    per_model = (
        inference.values("version__model__name")
        .annotate(**_INFERENCE_COUNTS, users=Count("owner", distinct=True))
        .order_by("version__model__name")
    )
    inference_totals = inference.aggregate(**_INFERENCE_COUNTS)
    yield Section(
        name="inference",
        title="Inference jobs per model",
        columns=["model", "jobs", "completed", "failed", "cancelled", "rows", "rows_done", "users"],
        rows=[
            [row["version__model__name"], *(row[name] for name in _INFERENCE_COUNTS), row["users"]] for row in per_model
        ],
        summary={"inference jobs": inference_totals["jobs"], "inference rows": inference_totals["rows"]},
    )


# --- Data-subject export


def _profile_rows(user: User) -> list[list]:
    fields = [
        ("id", user.pk),
        ("username", user.username),
        ("first_name", user.first_name),
        ("last_name", user.last_name),
        ("email", user.email),
        ("active", yes_no(user.is_active)),
        ("staff", yes_no(user.is_staff)),
        ("superuser", yes_no(user.is_superuser)),
        ("roles", joined(user.role_names)),
        ("joined", iso(user.date_joined)),
        ("last_login", iso(user.last_login)),
    ]
    return [[name, value] for name, value in fields]


def _device_rows(user: User) -> list[list]:
    rows = [
        ["totp", device.name, yes_no(device.confirmed), iso(device.created_at), iso(device.last_used_at), ""]
        for device in TOTPDevice.objects.filter(user=user).order_by("id")
    ]
    for device in StaticDevice.objects.filter(user=user).order_by("id"):
        # How many recovery codes are left, never the codes.
        remaining = StaticToken.objects.filter(device=device).count()
        rows.append(
            ["recovery codes", device.name, yes_no(device.confirmed), iso(device.created_at),
             iso(device.last_used_at), remaining]
        )  # fmt: skip
    for passkey in WebAuthnCredential.objects.filter(user=user).order_by("id"):
        rows.append(
            ["passkey", passkey.name, yes_no(passkey.confirmed), iso(passkey.created_at), iso(passkey.last_used_at), ""]
        )
    for device in ProviderMfaDevice.objects.filter(user=user).order_by("id"):
        rows.append(["provider MFA", device.name, yes_no(device.confirmed), "", "", ""])
    return rows


# The token's metadata only: the secret is never stored, and its hash must not leave the database either.
TOKEN_FIELDS = ("name", "prefix", "scopes", "allowed_networks", "created", "expires", "last_used", "last_used_ip",
                "revoked")  # fmt: skip


def _token_rows(user: User) -> list[list]:
    tokens = ApiToken.objects.filter(owner=user).order_by("created", "id").values_list(*TOKEN_FIELDS)
    return [
        [name, prefix, joined(scopes), joined(networks), iso(created), iso(expires) or "never", iso(last_used),
         last_ip or "", iso(revoked)]
        for name, prefix, scopes, networks, created, expires, last_used, last_ip, revoked in tokens
    ]  # fmt: skip


def _quantum_rows(user: User) -> Iterator[list]:
    jobs = QuantumJob.objects.filter(owner=user).order_by("id")
    fields = ("id", "name", "status", "num_qubits", "shots", "created_at", "finished_at", "tags", "source")
    for job_id, name, status, qubits, shots, created, finished, tags, source in jobs.values_list(*fields).iterator(
        chunk_size=CHUNK_SIZE
    ):
        yield [job_id, name, status, qubits, shots, iso(created), iso(finished), joined(tags), source]


def _inference_rows(user: User) -> Iterator[list]:
    jobs = InferenceJob.objects.filter(owner=user).order_by("id")
    fields = ("id", "name", "version__model__name", "version__version", "kind", "status", "progress_total",
              "created_at", "finished_at")  # fmt: skip
    for job_id, name, model, version, kind, status, rows, created, finished in jobs.values_list(*fields).iterator(
        chunk_size=CHUNK_SIZE
    ):
        yield [job_id, name, f"{model} v{version}", kind, status, rows, iso(created), iso(finished)]


def _session_rows(user: User) -> list[list]:
    return [
        [iso(session.created), iso(session.last_seen), session.ip, session.device]
        for session in UserSession.objects.filter(user=user).order_by("created", "id")
    ]


AUDIT_FIELDS = ("id", "timestamp", "action", "ip", "user_agent", "object_type", "object_id", "object_repr",
                "changes_text", "outcome")  # fmt: skip


def _audit_rows(user: User) -> Iterator[list]:
    events = AuditEvent.objects.filter(actor=user).order_by("id").values_list(*AUDIT_FIELDS)
    for event_id, timestamp, *rest in events.iterator(chunk_size=CHUNK_SIZE):
        yield [event_id, canonical_timestamp(timestamp), *rest]


def subject_export(params: ReportParams) -> Iterator[Section]:
    """Everything stored about the user ``filters["username"]``: profile, second factors (not their secrets),
    API tokens' metadata (never the secret's hash), sessions, jobs and the audit events they caused.

    The whole history is exported, whatever the period: a data-subject request is about everything held.
    """
    username = params.filters.get("username", "")
    user = User.objects.prefetch_related("groups").filter(username=username).first()
    if user is None:
        raise LookupError(f"There is no user {username!r} to export.")
    yield Section(
        name="profile",
        title=f"Profile of {user.username}",
        columns=["field", "value"],
        rows=_profile_rows(user),
        summary={
            "username": user.username,
            "scope": "everything stored about this user, whatever the period",
            "quantum jobs": QuantumJob.objects.filter(owner=user).count(),
            "inference jobs": InferenceJob.objects.filter(owner=user).count(),
            "api tokens": ApiToken.objects.filter(owner=user).count(),
            "audit events as actor": AuditEvent.objects.filter(actor=user).count(),
        },
    )
    yield Section(
        name="mfa_devices",
        title="Second factors",
        columns=["kind", "name", "confirmed", "created", "last_used", "recovery_codes_left"],
        rows=_device_rows(user),
    )
    yield Section(
        name="api_tokens",
        title="API tokens (metadata)",
        columns=[
            "name",
            "prefix",
            "scopes",
            "allowed_networks",
            "created",
            "expires",
            "last_used",
            "last_used_ip",
            "revoked",
        ],
        rows=_token_rows(user),
    )
    yield Section(
        name="sessions",
        title="Signed-in sessions",
        columns=["created", "last_seen", "ip", "device"],
        rows=_session_rows(user),
    )
    yield Section(
        name="quantum_jobs",
        title="Quantum jobs",
        columns=["id", "name", "status", "qubits", "shots", "created", "finished", "tags", "source"],
        rows=_quantum_rows(user),
    )
    yield Section(
        name="inference_jobs",
        title="Inference jobs",
        columns=["id", "name", "model_version", "kind", "status", "rows", "created", "finished"],
        rows=_inference_rows(user),
    )
    yield Section(
        name="audit_events",
        title="Audit events where they are the actor",
        columns=[
            "id",
            "timestamp",
            "action",
            "ip",
            "user_agent",
            "object_type",
            "object_id",
            "object",
            "changes",
            "outcome",
        ],
        rows=_audit_rows(user),
    )
