"""The backups pages, mounted at /backups/: the list with the backups' health, a backup's page with its
verification checklist, and the jobs that create, verify and restore backups, followed live.

Thin doors with the API's and the admin's rules: administrators do everything; compliance officers read the list
and the backups' pages as evidence; everyone else is refused. Restoring and handing out the file or its manifest
need sudo mode with a fresh authenticator code. Every action is a POST that redirects (to the job's page, which
follows it live, or back with a message saying what went wrong and what to do).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.accounts.sudo import sudo_redirect, sudo_second_factor_fresh
from apps.core.choices import Role
from apps.core.permissions import has_role
from apps.core.queueing import QueueUnavailable
from apps.jobs.choices import FINISHED_STATUSES
from apps.jobs.lifecycle import JobStateError

from . import selectors
from .api.serializers import BackupManifestSerializer, download_name
from .api.views import backup_file_response
from .checklist import verification_checklist
from .choices import BackupOperation
from .jobs import backup_job_cancel, backup_job_request
from .keys import BackupKeyError
from .models import Backup, BackupJob
from .services import BackupError, backup_file_open, backup_manifest

BACKUPS_PER_PAGE = 25
# What a refused request for a job says; the queue's refusal also marked the job failed, and says so.
REFUSALS = (BackupError, BackupKeyError, QueueUnavailable)


def _require_reader(request) -> None:
    if not has_role(request.user, Role.ADMIN, Role.COMPLIANCE):
        raise PermissionDenied("Backups are read by administrators and, as evidence, by compliance officers.")


def _require_admin(request) -> None:
    if not has_role(request.user, Role.ADMIN):
        raise PermissionDenied("Only administrators may create, verify, restore or download backups.")


def _job_page(job: BackupJob):
    return redirect("backups_page:job", job.pk)


@login_required
@require_safe
def index(request):
    """The backups, newest first, with their health and the jobs under way."""
    _require_reader(request)
    page = Paginator(selectors.backups_listed(), BACKUPS_PER_PAGE).get_page(request.GET.get("page"))
    may_operate = has_role(request.user, Role.ADMIN)
    context = {
        "page": page,
        "health": selectors.backups_health_summary(),
        "may_operate": may_operate,
        "jobs": list(selectors.backup_jobs_unfinished()) if may_operate else [],
    }
    return render(request, "backups/index.html", context)


@login_required
@require_POST
def create(request):
    """The "Back up now" button: a job a worker runs; its page follows it."""
    _require_admin(request)
    try:
        job = backup_job_request(BackupOperation.CREATE, request.user)
    except REFUSALS as exc:
        messages.error(request, f"No backup was taken: {exc}")
        return redirect("backups_page:index")
    messages.success(request, f"{job} is queued: a worker takes the backup, and this page follows it.")
    return _job_page(job)


@login_required
@require_safe
def detail(request, pk: int):
    """A backup: its verification as a checklist, its file's manifest, its tables' rows."""
    _require_reader(request)
    backup = get_object_or_404(Backup.objects.select_related("triggered_by"), pk=pk)
    context = {
        "backup": backup,
        "checklist": verification_checklist(backup.verification),
        "manifest": BackupManifestSerializer(backup).data,
        "may_operate": has_role(request.user, Role.ADMIN),
        "has_file": backup.status in selectors.VERIFIABLE,
        "restorable": backup.status in selectors.RESTORABLE,
    }
    return render(request, "backups/detail.html", context)


@login_required
@require_POST
def verify(request, pk: int):
    """Verify a backup by restoring it into a scratch database, as a job a worker runs."""
    _require_admin(request)
    backup = get_object_or_404(Backup, pk=pk)
    try:
        job = backup_job_request(BackupOperation.VERIFY, request.user, backup=backup)
    except REFUSALS as exc:
        messages.error(request, f"{backup} was not verified: {exc}")
        return redirect("backups_page:detail", backup.pk)
    messages.success(request, f"{job} is queued: a worker restores {backup} into a scratch database and checks it.")
    return _job_page(job)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def restore(request, pk: int):
    """Confirm, then replace the database with the backup (a worker takes a safety backup first).

    As in the admin: without a fresh authenticator code a GET goes to re-authentication and comes back here, and a
    POST is refused before anything is touched.
    """
    _require_admin(request)
    backup = get_object_or_404(Backup, pk=pk)
    here = reverse("backups_page:restore", args=[backup.pk])
    if not sudo_second_factor_fresh(request):
        if request.method == "POST":
            messages.error(
                request,
                "Nothing was restored: a restore needs your password and a fresh authenticator code. Confirm them, "
                "then confirm the restore again.",
            )
        return sudo_redirect(request, here)
    if request.method == "POST":
        try:
            job = backup_job_request(BackupOperation.RESTORE, request.user, backup=backup)
        except REFUSALS as exc:
            messages.error(request, f"Nothing was restored: {exc}")
            return redirect(here)
        messages.success(
            request,
            f"{job} is queued: a worker takes a safety backup, then restores {backup}. You may have to sign in "
            "again afterwards.",
        )
        return _job_page(job)
    context = {
        "backup": backup,
        "restorable": backup.status in selectors.RESTORABLE,
        "database": connection.settings_dict["NAME"],
        "rows": sum(backup.row_counts.values()),
    }
    return render(request, "backups/restore.html", context)


def _handed_out(request, pk: int, response_of):
    """``response_of(backup)`` inside the sudo window; else re-authenticate first and come straight back here."""
    _require_admin(request)
    backup = get_object_or_404(Backup, pk=pk)
    if not sudo_second_factor_fresh(request):
        return sudo_redirect(request)
    try:
        return response_of(backup)
    except BackupError as exc:
        messages.error(request, f"Nothing was downloaded: {exc}")
        return redirect("backups_page:detail", backup.pk)


@login_required
@require_safe
def download(request, pk: int):
    """The encrypted file (audited)."""
    return _handed_out(
        request, pk, lambda backup: backup_file_response(backup, backup_file_open(backup=backup, actor=request.user))
    )


@login_required
@require_safe
def manifest(request, pk: int):
    """The file's manifest as JSON, to check and restore a downloaded file elsewhere (audited)."""

    def manifest_response(backup: Backup) -> JsonResponse:
        body = BackupManifestSerializer(backup_manifest(backup=backup, actor=request.user)).data
        response = JsonResponse(body, json_dumps_params={"indent": 2})
        response["Content-Disposition"] = f'attachment; filename="{download_name(backup)}.manifest.json"'
        return response

    return _handed_out(request, pk, manifest_response)


@login_required
@require_safe
def job(request, pk: int):
    """A backup job, followed live over /ws/jobs/backup/<id>/ until it ends; then its result."""
    _require_admin(request)
    job = get_object_or_404(BackupJob.objects.select_related("owner", "backup"), pk=pk)
    context = {
        "job": job,
        "finished_statuses": " ".join(FINISHED_STATUSES),
        "checklist": verification_checklist(job.backup.verification)
        if job.operation == BackupOperation.VERIFY and job.backup and job.is_finished
        else [],
    }
    return render(request, "backups/job.html", context)


@login_required
@require_POST
def job_cancel(request, pk: int):
    """Cancel a job: a queued one at once, a running one at the worker's next step (as in the API)."""
    _require_admin(request)
    job = get_object_or_404(BackupJob, pk=pk)
    try:
        job = backup_job_cancel(job, actor=request.user)
    except JobStateError as exc:
        messages.error(request, f"Not cancelled: {exc}")
    else:
        if job.is_finished:
            messages.success(request, f"{job} is cancelled.")
        else:
            messages.success(request, f"{job} is being cancelled: the worker stops it within seconds.")
    return _job_page(job)
