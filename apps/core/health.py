"""Readiness checks: each reports ok or a short reason, and how long it took."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from kombu import Connection

from apps.backups.metrics import backup_metrics_refresh
from apps.backups.selectors import backups_health


class CheckFailed(Exception):
    """A check found a problem; the message is shown in the report."""


@dataclass(frozen=True)
class Check:
    name: str
    probe: Callable[[], str]
    required: bool = True


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return f"{connection.vendor} answers"


def check_broker() -> str:
    url = settings.CELERY_BROKER_URL
    if url.startswith("memory://"):
        return "embedded in-process broker"
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    try:
        with Connection(url, connect_timeout=timeout, transport_options={"socket_timeout": timeout}) as broker:
            broker.ensure_connection(max_retries=0)
    except Exception as exc:
        raise CheckFailed(f"broker unreachable: {_first_line(exc)}") from exc
    return "broker answers"


def check_channel_layer() -> str:
    layer = get_channel_layer()
    if layer is None:
        raise CheckFailed("no channel layer configured")

    async def round_trip() -> None:
        channel = await layer.new_channel("health.")
        marker = uuid.uuid4().hex
        await layer.send(channel, {"type": "health.ping", "marker": marker})
        message = await layer.receive(channel)
        if message.get("marker") != marker:
            raise CheckFailed("channel layer returned a different message")

    try:
        async_to_sync(asyncio.wait_for)(round_trip(), settings.HEALTH_CHECK_TIMEOUT_SECONDS)
    except CheckFailed:
        raise
    except TimeoutError as exc:
        raise CheckFailed(f"no answer within {settings.HEALTH_CHECK_TIMEOUT_SECONDS}s") from exc
    except Exception as exc:
        raise CheckFailed(f"channel layer unreachable: {_first_line(exc)}") from exc
    return f"{type(layer).__name__} round trip"


_migrations_known_applied = False


def check_migrations() -> str:
    # Applied migrations cannot become unapplied while this code runs, so a
    # clean result is remembered and later probes skip loading the graph.
    global _migrations_known_applied
    if _migrations_known_applied:
        return "all applied"
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        names = ", ".join(f"{migration.app_label}.{migration.name}" for migration, _ in pending[:5])
        raise CheckFailed(f"{len(pending)} unapplied migration(s): {names}; run manage.py migrate")
    _migrations_known_applied = True
    return "all applied"


def check_disk() -> str:
    usage = shutil.disk_usage(settings.DATA_DIR)
    free_mb = usage.free // (1024 * 1024)
    if free_mb < settings.HEALTH_MIN_FREE_DISK_MB:
        raise CheckFailed(f"{free_mb} MB free in {settings.DATA_DIR}, below {settings.HEALTH_MIN_FREE_DISK_MB} MB")
    return f"{free_mb} MB free"


def check_backups() -> str:
    # Readiness is probed often and by every process, so it also keeps the backup gauges current.
    backup_metrics_refresh()
    ok, detail = backups_health()
    if not ok:
        raise CheckFailed(detail)
    return detail


CHECKS = (
    Check("database", check_database),
    Check("broker", check_broker),
    Check("channel_layer", check_channel_layer),
    Check("migrations", check_migrations),
    Check("disk", check_disk, required=False),
    # Old, missing or unverifiable backups need an operator, but the portal still serves: degraded, not down.
    Check("backups", check_backups, required=False),
)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def run_check(check: Check) -> dict:
    started = time.perf_counter()
    try:
        detail, ok = check.probe(), True
    except CheckFailed as exc:
        detail, ok = str(exc), False
    except Exception as exc:
        detail, ok = f"{type(exc).__name__}: {_first_line(exc)}", False
    return {
        "ok": ok,
        "required": check.required,
        "detail": detail,
        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def readiness_report() -> dict:
    """Run every check; ``down`` if a required one fails, ``degraded`` if an optional one does."""
    results = {check.name: run_check(check) for check in CHECKS}
    failed = [result for result in results.values() if not result["ok"]]
    if any(result["required"] for result in failed):
        status = "down"
    elif failed:
        status = "degraded"
    else:
        status = "ok"
    return {"status": status, "checks": results}
