"""Readiness checks: each reports ok or a short reason, and how long it took, within a bounded time.

A readiness probe that hangs is as bad as none: an orchestrator waiting on it neither routes traffic away nor
restarts anything. So the checks that need no request state run in worker threads with a deadline, the database
one borrowing a pool connection with its own short timeout, and the checks that read through the request's
database connection run only once the database has answered.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor
from kombu import Connection
from psycopg_pool import PoolTimeout

from . import formatting
from .metrics import READINESS_CHECK_OK


class CheckFailed(Exception):
    """A check found a problem; the message is shown in the report."""


@dataclass(frozen=True)
class Check:
    name: str
    probe: Callable[[], str]
    required: bool = True
    # Reads through the request's own connection (so a test's transaction is visible): run after "database".
    uses_database: bool = False


# Beyond each check's own timeout, so that a check reports its own reason when it can.
DEADLINE_GRACE_SECONDS = 1


def check_database() -> str:
    pool = getattr(connection, "pool", None)
    if pool is None:  # SQLite, the embedded mode: no pool to wait on
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return f"{connection.vendor} answers"
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    pool.open()
    try:
        # Not Django's connection: its pool.getconn() would wait DATABASE_POOL_TIMEOUT, not the check's timeout.
        with pool.connection(timeout=timeout) as borrowed:
            borrowed.execute("SELECT 1")
    except PoolTimeout as exc:
        stats = pool.get_stats()
        in_use = stats["pool_size"] - stats["pool_available"]
        if in_use >= pool.max_size:
            raise CheckFailed(
                f"connection pool exhausted: all {pool.max_size} connections in use (DATABASE_POOL_MAX_SIZE), "
                f"none free within {timeout}s"
            ) from exc
        raise CheckFailed(f"no connection within {timeout}s: the database does not accept connections") from exc
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
        raise CheckFailed(f"{formatting.count(len(pending), 'unapplied migration')}: {names}; run manage.py migrate")
    _migrations_known_applied = True
    return "all applied"


def check_disk() -> str:
    usage = shutil.disk_usage(settings.DATA_DIR)
    free_mb = usage.free // (1024 * 1024)
    if free_mb < settings.HEALTH_MIN_FREE_DISK_MB:
        raise CheckFailed(f"{free_mb:,} MB free in {settings.DATA_DIR}, below {settings.HEALTH_MIN_FREE_DISK_MB:,} MB")
    return f"{free_mb:,} MB free"


CHECKS = [
    Check("database", check_database),
    Check("broker", check_broker),
    Check("channel_layer", check_channel_layer),
    Check("migrations", check_migrations, uses_database=True),
    Check("disk", check_disk, required=False),
]


def health_check_register(check: Check) -> None:
    """Add an app's readiness check (from its ``AppConfig.ready``): core imports no app, apps contribute.

    Registering a name again replaces that check, so a second ``ready`` call does not run it twice.
    """
    CHECKS[:] = [known for known in CHECKS if known.name != check.name] + [check]


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


def _failure(check: Check, detail: str, seconds: float = 0.0) -> dict:
    return {"ok": False, "required": check.required, "detail": detail, "latency_ms": round(seconds * 1000, 1)}


def _run_in_worker(check: Check) -> dict:
    try:
        return run_check(check)
    finally:
        # The worker thread's own connections (SQLite) go back now; the thread ends after this check.
        connections.close_all()


def _run_with_deadline(checks: Iterable[Check]) -> dict[str, dict]:
    """Run ``checks`` side by side; one still running at the deadline is failed with that reason."""
    checks = list(checks)
    deadline = settings.HEALTH_CHECK_TIMEOUT_SECONDS + DEADLINE_GRACE_SECONDS
    started = time.monotonic()
    executor = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="health-check")
    futures = [executor.submit(_run_in_worker, check) for check in checks]
    # Nobody waits for a late check: its own timeouts (pool, broker, channel layer) end its thread.
    executor.shutdown(wait=False)
    results = {}
    for check, future in zip(checks, futures, strict=True):
        try:
            results[check.name] = future.result(timeout=max(0.0, started + deadline - time.monotonic()))
        except TimeoutError:
            results[check.name] = _failure(check, f"no answer within {deadline}s", time.monotonic() - started)
    return results


def readiness_report() -> dict:
    """Run every check; ``down`` if a required one fails, ``degraded`` if an optional one does. Each check's result
    is also published as ``opsdeck_readiness_check_ok{check,required}`` for alerting.

    Answers within about HEALTH_CHECK_TIMEOUT_SECONDS + 1 s even when a service hangs or the pool is exhausted.
    """
    results = _run_with_deadline(check for check in CHECKS if not check.uses_database)
    database_ok = results["database"]["ok"]
    for check in CHECKS:
        if check.uses_database:
            results[check.name] = run_check(check) if database_ok else _failure(check, "not run: database is down")
    results = {check.name: results[check.name] for check in CHECKS}
    for name, result in results.items():
        READINESS_CHECK_OK.labels(check=name, required=str(result["required"]).lower()).set(1 if result["ok"] else 0)
    failed = [result for result in results.values() if not result["ok"]]
    if any(result["required"] for result in failed):
        status = "down"
    elif failed:
        status = "degraded"
    else:
        status = "ok"
    return {"status": status, "checks": results}
