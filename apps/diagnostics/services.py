"""The diagnostics bundle: one zip of JSON files that tells support how this installation runs, with no secret
and no personal data beyond counts.

Each section is gathered on its own: a section that fails (the broker down, say) says why in its file and the
rest of the bundle still comes out, since a bundle is wanted most when something is broken.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import sqlite3
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.audit.models import AuditCheckpoint, AuditEvent
from apps.audit.services import event_record
from apps.audit.verification import chain_verify
from apps.core.choices import MaintenanceStatus, Role
from apps.core.health import readiness_report
from apps.core.models import MaintenanceRun
from apps.core.versions import software_versions
from apps.jobs.selectors import queues_overview, workers_overview
from apps.readonly.services import maintenance_mode_status
from project.settings.broker import is_amqp

from .masking import MASK, known_secrets, leaked, scrubbed, settings_snapshot

logger = logging.getLogger(__name__)

# The audit chain is verified from its last signed checkpoint (everything before it was signed and is verified by
# the daily task): at most this many events, so that a bundle of a huge trail still comes out in seconds.
AUDIT_VERIFY_MAX_EVENTS = 200_000
# Maintenance runs listed: the newest runs, and the failures of the last days.
RUNS_LISTED = 50
FAILURES_DAYS = 7
# Disk usage: files counted under the data directory before giving up (with what was counted so far).
DISK_MAX_FILES = 200_000
DISK_MAX_SECONDS = 5.0
SERVICE_TIMEOUT_SECONDS = 3


@dataclass(frozen=True)
class Bundle:
    """A built bundle: the zip's bytes, its member names, and the file name to offer."""

    content: bytes
    members: list[str]
    filename: str


# --- Sections


def section_versions() -> dict:
    """Python and packages, and the servers: PostgreSQL (or SQLite), Redis, RabbitMQ when it is the broker."""
    versions = {"portal": software_versions(), "servers": {}}
    servers = versions["servers"]
    servers["database"] = _database_version()
    servers["redis"] = _redis_version()
    if is_amqp(settings.CELERY_BROKER_URL):
        servers["rabbitmq"] = _rabbitmq_version()
    return versions


def _database_version() -> str:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            return f"PostgreSQL {cursor.fetchone()[0]}"
    if connection.vendor == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    return connection.vendor


def _redis_version() -> str:
    if not settings.REDIS_URL:
        return "not used (embedded mode)"
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=SERVICE_TIMEOUT_SECONDS)
    try:
        return f"Redis {client.info('server')['redis_version']}"
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"
    finally:
        client.close()


def _rabbitmq_version() -> str:
    from kombu import Connection

    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=SERVICE_TIMEOUT_SECONDS) as broker:
            broker.ensure_connection(max_retries=0)
            properties = getattr(broker.connection, "server_properties", {}) or {}
            version = properties.get("version", "unknown")
            return f"RabbitMQ {version.decode() if isinstance(version, bytes) else version}"
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"


def section_settings() -> dict:
    return {"masked_with": MASK, "settings": settings_snapshot()}


def section_health() -> dict:
    return readiness_report()


def section_migrations() -> dict:
    """Per app: how many migrations are applied, and the names of those that are not."""
    executor = MigrationExecutor(connection)
    applied = set(executor.loader.applied_migrations)
    pending = [migration for migration, _ in executor.migration_plan(executor.loader.graph.leaf_nodes())]
    apps: dict[str, dict] = {}
    for app_label, name in executor.loader.graph.nodes:
        entry = apps.setdefault(app_label, {"applied": 0, "unapplied": []})
        if (app_label, name) in applied:
            entry["applied"] += 1
    for migration in pending:
        apps.setdefault(migration.app_label, {"applied": 0, "unapplied": []})["unapplied"].append(migration.name)
    return {"unapplied_total": len(pending), "apps": dict(sorted(apps.items()))}


def section_queues() -> dict:
    return {
        "queues": [
            {
                "name": queue.name,
                "depth": queue.depth,
                "depth_error": queue.depth_error,
                "finished_last_15_minutes": queue.finished,
                "per_minute": queue.per_minute,
                "consumers": queue.consumers,
                "held_for_maintenance": queue.held,
            }
            for queue in queues_overview(minutes=15)
        ]
    }


def section_workers() -> dict:
    """Workers as they announced themselves, and the jobs they run by kind and id (no names or owners)."""
    return {
        "workers": [
            {
                "hostname": view.presence.hostname,
                "state": view.state,
                "queues": view.presence.queues,
                "drained_queues": view.presence.drained_queues,
                "concurrency": view.presence.concurrency,
                "pid": view.presence.pid,
                "processor": view.presence.processor,
                "memory_bytes": view.presence.memory_bytes,
                "started_at": view.presence.started_at,
                "last_heartbeat": view.presence.seen_at,
                "versions": view.presence.versions,
                "running_jobs": [{"kind": job.kind, "id": job.id, "status": job.status} for job in view.running],
            }
            for view in workers_overview()
        ]
    }


def _run(run: MaintenanceRun) -> dict:
    return {
        "task": run.task_name,
        "status": run.status,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "worker": run.worker,
        "message": run.message,
    }


def section_maintenance_runs() -> dict:
    since = timezone.now() - timedelta(days=FAILURES_DAYS)
    failed = MaintenanceRun.objects.filter(status=MaintenanceStatus.FAILED, started_at__gte=since)
    return {
        "last_runs": [_run(run) for run in MaintenanceRun.objects.all()[:RUNS_LISTED]],
        f"failures_last_{FAILURES_DAYS}_days": failed.count(),
        "failures": [_run(run) for run in failed[:RUNS_LISTED]],
    }


def section_disk() -> dict:
    """The data directory's file system, and what each of its top-level entries holds (bounded walk)."""
    data_dir = Path(settings.DATA_DIR)
    usage = shutil.disk_usage(data_dir)
    entries, files, complete = {}, 0, True
    deadline = time.monotonic() + DISK_MAX_SECONDS
    for entry in sorted(data_dir.iterdir()) if data_dir.is_dir() else []:
        size = 0
        for root, _dirs, names in os.walk(entry) if entry.is_dir() else [(str(data_dir), [], [entry.name])]:
            for name in names:
                files += 1
                try:
                    size += os.lstat(os.path.join(root, name)).st_size
                except OSError:
                    continue
            if files >= DISK_MAX_FILES or time.monotonic() > deadline:
                complete = False
                break
        entries[entry.name] = size
        if not complete:
            break
    return {
        "data_dir": str(data_dir),
        "filesystem": {"total_bytes": usage.total, "used_bytes": usage.used, "free_bytes": usage.free},
        "entries_bytes": entries,
        "files_counted": files,
        "complete": complete,
    }


def section_audit_chain() -> dict:
    """The chain verified from its last signed checkpoint (bounded), with the checkpoints' own signatures."""
    checkpoint = AuditCheckpoint.objects.order_by("-id").first()
    newest = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    from_id = checkpoint.head_id if checkpoint else None
    scope = "from the last signed checkpoint" if checkpoint else "the whole trail"
    if newest is not None and newest - (from_id or 0) > AUDIT_VERIFY_MAX_EVENTS:
        from_id = newest - AUDIT_VERIFY_MAX_EVENTS
        scope = f"the newest {AUDIT_VERIFY_MAX_EVENTS} events (the daily verification covers the rest)"
    report = chain_verify(from_id=from_id)
    return {
        "ok": report.ok,
        "scope": scope,
        "summary": report.summary(),
        "verified_events": report.verified,
        "checkpoints_checked": report.checkpoints,
        "bad_event_id": report.bad_event_id,
        "problem": report.problem,
        "warnings": report.warnings,
        "last_checkpoint": (
            {"head_id": checkpoint.head_id, "created": checkpoint.created, "event_count": checkpoint.event_count}
            if checkpoint
            else None
        ),
        "events_in_database": AuditEvent.objects.count(),
    }


def section_users() -> dict:
    """Counts only: accounts, active, staff, superusers, and holders of each role."""
    users = get_user_model().objects
    return {
        "total": users.count(),
        "active": users.filter(is_active=True).count(),
        "staff": users.filter(is_staff=True).count(),
        "superusers": users.filter(is_superuser=True).count(),
        "per_role": {role.value: users.filter(groups__name=role.value).distinct().count() for role in Role},
    }


def section_maintenance_mode() -> dict:
    """Whether the portal is in maintenance (read-only) mode, its message, end and planned windows (not who switched
    it: no personal data)."""
    status = maintenance_mode_status().as_dict()
    status.pop("changed_by", None)
    return status


SECTIONS: dict[str, Callable[[], dict]] = {
    "versions.json": section_versions,
    "settings.json": section_settings,
    "health.json": section_health,
    "migrations.json": section_migrations,
    "queues.json": section_queues,
    "workers.json": section_workers,
    "maintenance_runs.json": section_maintenance_runs,
    "disk.json": section_disk,
    "audit_chain.json": section_audit_chain,
    "users.json": section_users,
    "maintenance_mode.json": section_maintenance_mode,
}

README = """Opsdeck diagnostics bundle
==========================

Made {made} by {who}, on {host}.

Every file is JSON:
{files}

Secrets: settings whose names look secret show {mask}; so does the password of every URL, and every known secret
value (settings, environment, webhook signing secrets) wherever it appeared. Personal data: none beyond counts of
users per role. Sections that could not be gathered say why in an "error" field.
"""


def _gathered(name: str, section: Callable[[], dict]) -> dict:
    started = time.monotonic()
    try:
        data = section()
    except Exception as exc:
        logger.exception("diagnostics section %s failed", name)
        data = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    if isinstance(data, dict):
        data.setdefault("gathered_in_ms", round((time.monotonic() - started) * 1000, 1))
    return data


def _json(data) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str, ensure_ascii=False) + "\n"


def diagnostics_bundle_build(*, actor=None, via: str) -> Bundle:
    """Gather every section, scrub each file of every known secret, zip them with a README; audited as
    ``diagnostics.bundle.created`` (``via``: "cli", "page" or "api"; ``actor``: who asked, none on the CLI).

    Raises RuntimeError if a known secret is still found in the zip (never expected: the bundle is then withheld).
    """
    made = timezone.now()
    secrets = known_secrets()
    files = {name: scrubbed(_json(_gathered(name, section)), secrets) for name, section in SECTIONS.items()}
    who = actor.get_username() if actor is not None else "the diagnose command"
    readme = README.format(
        made=made.strftime("%Y-%m-%d %H:%M:%S UTC"),
        who=who,
        host=os.uname().nodename,
        files="\n".join(f"  {name}" for name in files),
        mask=MASK,
    )
    files = {"README.txt": scrubbed(readme, secrets), **files}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text.encode())
    # The last word: the written files themselves, byte for byte.
    for name, text in files.items():
        if leaked(text.encode(), secrets):
            raise RuntimeError(f"A secret remained in {name}; the diagnostics bundle was not produced.")
    filename = f"opsdeck-diagnostics-{made.strftime('%Y%m%dT%H%M%SZ')}.zip"
    event_record(
        action="diagnostics.bundle.created",
        actor=actor,
        object_type="diagnostics.bundle",
        object_id=filename,
        object_repr=filename,
        changes={"via": via, "files": list(files), "bytes": buffer.getbuffer().nbytes},
    )
    return Bundle(content=buffer.getvalue(), members=list(files), filename=filename)
