"""Audit trail benchmark: print figures and ratios against baselines measured in the same run.

Runs against a scratch PostgreSQL database of its own (dropped first if present,
dropped at the end even on failure):

1. ``event_record``: latency of appending one event per transaction (p50, p95),
   interleaved with a floor: the same statements through plain psycopg.
2. Builds AUDIT_BENCH_EVENTS events (env var, default 1,000,000): a valid chain
   computed in Python and loaded with COPY, continuing from the head step 1 left.
3. ``chain_verify`` over the whole chain: events/s.
4. CSV export of every event with ``export_chunks`` in a child process (time and
   peak RSS) against psql's ``\\copy ... TO ... CSV`` of the same columns; the
   async export once, for information.

Figures that miss their target are reported, not fatal; errors (a chain that
does not verify, an incomplete export, a failing async export) exit non-zero
after the summary.

    .venv/bin/python benchmarks/audit.py
    AUDIT_BENCH_EVENTS=20000 .venv/bin/python benchmarks/audit.py   # quick try
    AUDIT_BENCH_SWEEP_SECONDS=10 AUDIT_BENCH_SWEEP_WRITERS=1,4,16 .venv/bin/python benchmarks/audit.py
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROJECT_DIR = Path(__file__).resolve().parents[1]
AUDIT_BENCH_EVENTS = int(os.environ.get("AUDIT_BENCH_EVENTS", "1000000"))
RECORD_EVENTS = 3000
RECORD_WARMUP = 100
SEED = 20240611

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
DATABASE = os.environ.get("BENCH_DATABASE", "opsdeck_bench_audit")  # dropped and created again by each run
DATABASE_URL = f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{DATABASE}"

SWEEP_SECONDS = float(os.environ.get("AUDIT_BENCH_SWEEP_SECONDS", "5"))
SWEEP_WRITERS = tuple(int(n) for n in os.environ.get("AUDIT_BENCH_SWEEP_WRITERS", "1,2,4,16,64").split(","))
SWEEP_CONTENTS = 500  # events each writer cycles through (built before the clock starts)
# Connections the sweep leaves free for everything else using this server (other sessions, superuser slots).
SWEEP_SPARE_CONNECTIONS = 10

TARGET_RECORD_P50_MS = 1.0
# Issue 21's targets for the sweep (ratios in the same run) and for an append inside a caller's transaction.
TARGET_SWEEP_RATIO_AT_16 = 0.5
TARGET_RECORD_IN_TX_P50_MS = 0.5
TARGET_VERIFY_PER_S = 100_000
TARGET_EXPORT_RATIO = 3.0
TARGET_EXPORT_PEAK_MB = 200


# --- Scratch database and Django configuration


def admin_execute(sql: str) -> None:
    import psycopg

    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True) as conn:
        conn.execute(sql)


def database_create() -> None:
    admin_execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    admin_execute(f"CREATE DATABASE {DATABASE}")


def database_drop() -> None:
    admin_execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def environment_configure(data_dir: Path) -> None:
    """Point the settings at the scratch database; the export child inherits this environment."""
    for name in ("REDIS_URL", "REDIS_URL_FILE", "DATABASE_URL_FILE", "PROMETHEUS_MULTIPROC_DIR", "DEBUG"):
        os.environ.pop(name, None)
    os.environ["DATABASE_URL"] = DATABASE_URL
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings.local"
    os.environ["OPSDECK_DATA_DIR"] = str(data_dir)
    os.environ["LOG_LEVEL"] = "warning"


def django_setup() -> None:
    import django

    django.setup()


def django_close() -> None:
    from django.apps import apps
    from django.db import connections

    if not apps.ready:
        return

    for connection in connections.all(initialized_only=True):
        connection.close()
        if hasattr(connection, "close_pool"):
            connection.close_pool()


# --- Synthetic content

FIRST_NAMES = ("ana", "ben", "chloe", "dmitri", "eva", "farid", "grace", "hiro")
LAST_NAMES = ("smith", "nguyen", "okafor", "larsen", "garcia")
USERNAMES = [
    *(f"{first}.{last}" for first in FIRST_NAMES for last in LAST_NAMES),
    "zoë.müller",
    "søren.kierkegaard",
    "ops-bot",
    "backup-service",
    "admin",
]
USER_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "python-requests/2.32.3",
    "curl/8.5.0",
    "opsdeck-cli/1.4.2",
]
API_OBJECTS = [
    ("quantum.job", "/api/v1/quantum/jobs/"),
    ("registry.modelversion", "/api/v1/registry/versions/"),
    ("core.backup", "/api/v1/backups/"),
    ("compliance.evidence", "/api/v1/compliance/evidence/"),
]


def ip_pool(rng: random.Random) -> list[str]:
    ips = [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(3000)]
    ips += [f"192.168.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(1000)]
    ips += [f"2001:db8:{rng.randrange(1, 0xFFFF):x}::{rng.randrange(1, 0xFFFF):x}" for _ in range(500)]
    return ips


class EventFactory:
    """Varied, realistic event content (everything but timestamp and hashes)."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.ips = ip_pool(rng)

    def request_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def __call__(self) -> dict:
        rng = self.rng
        roll = rng.random()
        username = rng.choice(USERNAMES)
        ip = rng.choice(self.ips)
        agent = rng.choice(USER_AGENTS)
        event = {
            "actor_username": username,
            "ip": ip,
            "user_agent": agent,
            "object_type": "",
            "object_id": "",
            "object_repr": "",
            "changes": {},
            "request_id": self.request_id(),
            "outcome": "success",
        }
        if roll < 0.30:
            object_type, path = rng.choice(API_OBJECTS)
            object_id = str(rng.randrange(1, 500_000))
            status = rng.choice((200, 201, 201, 204, 400, 409))
            method = "POST" if status == 201 else rng.choice(("PATCH", "PUT", "DELETE", "POST"))
            event.update(
                action="api.write",
                object_type=object_type,
                object_id=object_id,
                changes={"method": method, "path": f"{path}{object_id}/", "status": status},
                outcome="success" if status < 400 else "failure",
            )
        elif roll < 0.55:
            user_id = str(rng.randrange(1, 400))
            event.update(action="auth.login.succeeded", object_type="accounts.user", object_id=user_id)
            event["object_repr"] = username
        elif roll < 0.65:
            event.update(
                action="auth.login.failed",
                actor_username="",
                object_type="accounts.user",
                object_repr=username,
                changes={"username": username},
                outcome="failure",
            )
        elif roll < 0.72:
            event.update(
                action="access.denied",
                changes={"method": "GET", "path": f"/admin/accounts/user/{rng.randrange(1, 400)}/", "status": 403},
                outcome="denied",
            )
        elif roll < 0.80:
            event.update(action="auth.logout", object_type="accounts.user", object_id=str(rng.randrange(1, 400)))
            event["object_repr"] = username
        elif roll < 0.90:
            task = rng.choice(("nightly-backup", "checkpoint-audit", "verify-audit", "registry-sync", "cleanup"))
            event.update(
                action="schedule.changed",
                object_type="django_celery_beat.periodictask",
                object_id=str(rng.randrange(1, 40)),
                object_repr=f"{task}: every {rng.choice((5, 15, 60))} minutes",
                changes={
                    "enabled": {"before": True, "after": False},
                    "interval_id": {"before": rng.randrange(1, 9), "after": rng.randrange(1, 9)},
                    "description": {"before": "", "after": f"paused for maintenance ticket OPS-{rng.randrange(9999)}"},
                },
            )
        elif roll < 0.96:
            user_id = rng.randrange(1, 400)
            event.update(
                action="accounts.user.changed",
                object_type="accounts.user",
                object_id=str(user_id),
                object_repr=rng.choice(USERNAMES),
                changes={
                    "is_staff": {"before": False, "after": True},
                    "password": {"before": "********", "after": "********"},
                    "groups": {"added": [rng.randrange(1, 12)]},
                },
            )
        else:
            username_new = f"user{rng.randrange(100_000)}"
            event.update(
                action="accounts.user.created",
                object_type="accounts.user",
                object_id=str(rng.randrange(400, 100_000)),
                object_repr=username_new,
                changes={
                    "after": {
                        "username": username_new,
                        "email": f"{username_new}@example.org",
                        "is_active": True,
                        "is_staff": False,
                        "is_superuser": False,
                        "first_name": "",
                        "last_name": "",
                        "password": "********",
                    }
                },
            )
        if (event["actor_username"] == "" or rng.random() < 0.05) and rng.random() < 0.5:
            # System events (beat tasks, CLI) carry neither user agent nor address.
            event.update(ip=None, user_agent="")
        return event


# --- 1. event_record


FLOOR_LOCK_KEY = 0x42454E4348  # a lock of the floor's own, so it never waits for event_record's


def table_like_events(cursor, name: str) -> None:
    """Create ``name`` shaped like the events table: same columns, indexes, unique constraint and monthly
    partitions (PostgreSQL, migration 0013), an id sequence of its own, no trigger and no chain."""
    cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = 'audit_auditevent'::regclass")
    if not cursor.fetchone()[0]:
        cursor.execute(f"CREATE TABLE {name} (LIKE audit_auditevent INCLUDING ALL)")
        return
    # LIKE copies the id default too, which would draw on the events' sequence.
    cursor.execute(f"CREATE TABLE {name} (LIKE audit_auditevent INCLUDING ALL) PARTITION BY RANGE (timestamp)")
    cursor.execute(f"CREATE SEQUENCE {name}_id_seq OWNED BY {name}.id")
    cursor.execute(f"ALTER TABLE {name} ALTER COLUMN id SET DEFAULT nextval('{name}_id_seq')")
    cursor.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c "
        "ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_auditevent'::regclass"
    )
    for partition, bound in cursor.fetchall():
        cursor.execute(f"CREATE TABLE {partition.replace('audit_auditevent', name)} PARTITION OF {name} {bound}")


def floor_prepare() -> None:
    """A copy of the events table (same columns, indexes and partitions, no trigger) for the plain-SQL floor."""
    from django.db import connection

    with connection.cursor() as cursor:
        table_like_events(cursor, "bench_floor")


def floor_record(conn, values: dict) -> None:
    """What event_record does, minus Django: BEGIN, advisory lock, read head, hash, INSERT, COMMIT."""
    from django.utils import timezone

    from apps.audit.hashing import GENESIS_HASH, canonical_timestamp, changes_text, event_hash

    values = {**values, "ip": values["ip"] or "", "changes_text": changes_text(values["changes"])}
    conn.execute("SELECT pg_advisory_xact_lock(%s)", [FLOOR_LOCK_KEY])
    head = conn.execute("SELECT hash FROM bench_floor ORDER BY id DESC LIMIT 1").fetchone()
    timestamp = timezone.now()
    values = {**values, "prev_hash": head[0] if head else GENESIS_HASH}
    digest = event_hash({**values, "timestamp": canonical_timestamp(timestamp)})
    conn.execute(
        "INSERT INTO bench_floor (timestamp, actor_username, ip, user_agent, action, object_type, object_id, "
        "object_repr, changes_text, request_id, outcome, prev_hash, hash) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        [timestamp, values["actor_username"], values["ip"], values["user_agent"], values["action"],
         values["object_type"], values["object_id"], values["object_repr"],
         values["changes_text"], values["request_id"], values["outcome"], values["prev_hash"], digest],
    )  # fmt: skip
    conn.commit()


def _timed_record(factory, content: dict) -> float:
    """Milliseconds one event_record call takes for ``content``, with a realistic request."""
    from apps.audit.services import event_record

    request = factory.post(
        content["changes"].get("path", "/api/v1/quantum/jobs/"),
        REMOTE_ADDR=content["ip"] or "10.0.0.1",
        HTTP_USER_AGENT=content["user_agent"],
    )
    request.request_id = content["request_id"]
    fields = {name: content[name] for name in ("object_type", "object_id", "object_repr")}
    started = time.perf_counter()
    event_record(
        action=content["action"],
        actor=None,
        changes=content["changes"],
        outcome=content["outcome"],
        request=request,
        **fields,
    )
    return (time.perf_counter() - started) * 1000


def bench_record() -> dict:
    """event_record as its own transaction (interleaved with the plain-psycopg floor, same statements),
    then inside a caller's transaction, the way services use it (the commit is the caller's)."""
    import psycopg
    from django.db import connection, transaction
    from django.test import RequestFactory

    rng = random.Random(SEED)  # noqa: S311 - reproducible content, not secrets
    factory = RequestFactory()
    make = EventFactory(rng)
    floor_prepare()
    latencies, floor, in_transaction = [], [], []
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=DATABASE) as conn:
        for index in range(RECORD_WARMUP + RECORD_EVENTS):
            content = make()
            elapsed = _timed_record(factory, content)
            started = time.perf_counter()
            floor_record(conn, content)
            if index >= RECORD_WARMUP:
                latencies.append(elapsed)
                floor.append((time.perf_counter() - started) * 1000)
    if not connection.get_autocommit():
        raise RuntimeError("event_record was measured inside a transaction; expected one transaction per event")
    for _ in range(RECORD_EVENTS):
        with transaction.atomic(), connection.cursor() as cursor:
            # Stands for the caller's own change, which has opened the transaction already.
            cursor.execute("SELECT 1")
            in_transaction.append(_timed_record(factory, make()))
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_floor")
    latencies.sort()
    floor.sort()
    in_transaction.sort()
    return {
        "record_p50_ms": statistics.median(latencies),
        "record_p95_ms": latencies[int(len(latencies) * 0.95) - 1],
        "record_in_tx_p50_ms": statistics.median(in_transaction),
        "record_in_tx_p95_ms": in_transaction[int(len(in_transaction) * 0.95) - 1],
        "floor_p50_ms": statistics.median(floor),
        "floor_p95_ms": floor[int(len(floor) * 0.95) - 1],
        "record_count": len(latencies),
    }


# --- Concurrency sweep

PLAIN_TABLE = "bench_plain"
PLAIN_COLUMNS = ("timestamp", "actor_username", "ip", "user_agent", "action", "object_type", "object_id",
                 "object_repr", "changes_text", "request_id", "outcome", "prev_hash", "hash")  # fmt: skip
PLAIN_SQL = (
    f"INSERT INTO {PLAIN_TABLE} ({', '.join(PLAIN_COLUMNS)}) "  # noqa: S608 - our own table and columns
    f"VALUES ({', '.join(['%s'] * len(PLAIN_COLUMNS))})"
)


def sweep_contents(index: int) -> list[tuple[dict, object, dict]]:
    """One writer's events: content, the request event_record reads, and the row a plain INSERT writes."""
    from django.test import RequestFactory

    from apps.audit.hashing import changes_text, json_normalized
    from apps.audit.masking import masked

    factory = RequestFactory()
    make = EventFactory(random.Random(SEED + 100 + index))  # noqa: S311 - reproducible content, not secrets
    contents = []
    for _ in range(SWEEP_CONTENTS):
        content = make()
        request = factory.post(
            content["changes"].get("path", "/api/v1/quantum/jobs/"),
            REMOTE_ADDR=content["ip"] or "10.0.0.1",
            HTTP_USER_AGENT=content["user_agent"],
        )
        request.request_id = content["request_id"]
        # What event_record stores for this content and request (see _request_fields), minus the chain.
        row = {
            "actor_username": "",
            "ip": content["ip"] or "10.0.0.1",
            "user_agent": content["user_agent"],
            "action": content["action"],
            "object_type": content["object_type"],
            "object_id": content["object_id"],
            "object_repr": content["object_repr"],
            "changes_text": changes_text(json_normalized(masked(content["changes"]))),
            "request_id": content["request_id"],
            "outcome": content["outcome"],
        }
        contents.append((content, request, row))
    return contents


def sweep_writer(index: int, commands, results) -> None:
    """A forked writer process: for each round it is sent, appends one event per transaction until the round ends.

    ``chain`` calls event_record; ``plain`` INSERTs the same row, hashed in Python over the content alone
    (no lock, no head read, no link), into the plain table. Both run as BEGIN, one statement, COMMIT.
    """
    from django.db import connection, transaction
    from django.utils import timezone

    from apps.audit.hashing import GENESIS_HASH, canonical_timestamp, event_hash
    from apps.audit.services import event_record

    # One connection per writer process, whatever the pool settings say.
    connection.settings_dict["OPTIONS"]["pool"].update(min_size=1, max_size=1)
    contents = sweep_contents(index)
    results.put((index, "ready", 0))
    while (command := commands.recv()) is not None:
        mode, start_at, end_at = command
        count, size = 0, len(contents)
        time.sleep(max(0.0, start_at - time.time()))
        try:
            while time.time() < end_at:
                content, request, row = contents[count % size]
                if mode == "chain":
                    with transaction.atomic():
                        event_record(
                            action=content["action"],
                            actor=None,
                            changes=content["changes"],
                            outcome=content["outcome"],
                            request=request,
                            object_type=content["object_type"],
                            object_id=content["object_id"],
                            object_repr=content["object_repr"],
                        )
                else:
                    timestamp = timezone.now()
                    values = {**row, "prev_hash": GENESIS_HASH, "timestamp": canonical_timestamp(timestamp)}
                    digest = event_hash(values)
                    with transaction.atomic(), connection.cursor() as cursor:
                        cursor.execute(PLAIN_SQL, [timestamp, *(values[name] for name in PLAIN_COLUMNS[1:-1]), digest])
                count += 1
        except Exception as exc:  # reported by the parent, which then stops the sweep
            results.put((index, "error", f"{type(exc).__name__}: {exc}"))
            continue
        results.put((index, "done", count))
    django_close()


def sweep_connection_budget() -> int:
    """Writer connections PostgreSQL can take now, leaving SWEEP_SPARE_CONNECTIONS free."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('max_connections')::int, (SELECT count(*) FROM pg_stat_activity)")
        limit, used = cursor.fetchone()
    return limit - used - SWEEP_SPARE_CONNECTIONS


def sweep_round(writers: list, results, count: int, mode: str) -> float:
    """Events/s of ``count`` writers appending in ``mode`` for SWEEP_SECONDS, all starting at the same moment."""
    start_at = time.time() + 0.2 + 0.005 * count
    for commands, _ in writers[:count]:
        commands.send((mode, start_at, start_at + SWEEP_SECONDS))
    total = 0
    for _ in range(count):
        index, status, figure = results.get(timeout=SWEEP_SECONDS + 120)
        if status != "done":
            raise RuntimeError(f"sweep writer {index} failed ({mode}, {count} writers): {figure}")
        total += figure
    return total / SWEEP_SECONDS


def bench_sweep() -> dict:
    """Chained appends and plain INSERTs per writer count, each round SWEEP_SECONDS long, in the same run."""
    from django.db import connection

    budget = sweep_connection_budget()
    counts = [count for count in SWEEP_WRITERS if count <= budget]
    skipped = [count for count in SWEEP_WRITERS if count > budget]
    with connection.cursor() as cursor:
        # Same columns, indexes, unique constraint and partitions as the audit table; no trigger, no chain.
        table_like_events(cursor, PLAIN_TABLE)
    # Forked after Django is set up (copy-on-write, no per-writer start-up); each child opens its own connection
    # pool on first use, capped at one connection so the sweep holds at most one connection per writer.
    django_close()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    writers = []
    try:
        for index in range(max(counts, default=0)):
            parent_end, child_end = context.Pipe()
            process = context.Process(target=sweep_writer, args=(index, child_end, results), daemon=True)
            process.start()
            writers.append((parent_end, process))
        for _ in writers:
            index, status, figure = results.get(timeout=300)
            if status != "ready":
                raise RuntimeError(f"sweep writer {index} did not start: {figure}")
        rates = {}
        for count in counts:
            # Plain first on even rounds, chained first on odd ones, so neither always runs on a warmer server.
            modes = ("plain", "chain") if len(rates) % 2 == 0 else ("chain", "plain")
            rates[count] = {mode: sweep_round(writers, results, count, mode) for mode in modes}
            print(
                f"    {count:3d} writers  chained {rates[count]['chain']:8,.0f} events/s   "
                f"plain INSERT {rates[count]['plain']:8,.0f} rows/s   "
                f"ratio {rates[count]['chain'] / rates[count]['plain']:.2f}"
            )
    finally:
        for commands, _ in writers:
            with contextlib.suppress(OSError):  # a writer that died already
                commands.send(None)
        for _, process in writers:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    try:
        # After the writers closed their connections: pgbench opens as many again.
        server_rates = bench_server_sweep(counts)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {PLAIN_TABLE}")
    return {"sweep": rates, "server_sweep": server_rates, "sweep_skipped": skipped, "sweep_budget": budget}


def bench_server_sweep(counts: list[int]) -> dict:
    """The same rounds driven by pgbench (benchmarks/audit_server_sweep.py): the server's side of the sweep."""
    import audit_server_sweep as server
    from django.conf import settings

    if not server.available():
        print("    server side: pgbench not found (Debian: postgresql-contrib); skipped")
        return {}
    print("    server side, the same statements from pgbench's C clients (none of the writers' Python):")
    target = {"host": PG_HOST, "port": PG_PORT, "user": PG_USER, "database": DATABASE, "chains": settings.AUDIT_CHAINS}
    rates = {}
    for count in counts:
        scripts = {"chain": server.CHAINED_SCRIPT, "plain": server.plain_script(PLAIN_TABLE)}
        order = ("plain", "chain") if len(rates) % 2 == 0 else ("chain", "plain")
        rates[count] = {
            mode: server.transactions_per_second(scripts[mode], count, SWEEP_SECONDS, **target) for mode in order
        }
        print(
            f"    {count:3d} clients  chained {rates[count]['chain']:8,.0f} events/s   "
            f"plain INSERT {rates[count]['plain']:8,.0f} rows/s   "
            f"ratio {rates[count]['chain'] / rates[count]['plain']:.2f}"
        )
    return rates


# --- 2. Bulk chain load

TEMPLATES = 20_000


class Template:
    """One event's content, everything but timestamp, request_id and prev_hash."""

    __slots__ = ("row", "values")

    def __init__(self, values: dict):
        from apps.audit.hashing import changes_text, json_normalized

        changes = json_normalized(values["changes"])
        self.values = {**values, "ip": values["ip"] or "", "changes": changes, "changes_text": changes_text(changes)}
        self.row = tuple(self.values[name] for name in TEMPLATE_COLUMNS)


# COPY columns: the template's, then the per-event ones.
TEMPLATE_COLUMNS = ("action", "actor_username", "changes_text", "ip", "object_id", "object_repr", "object_type",
                    "outcome", "user_agent")  # fmt: skip
COPY_COLUMNS = (*TEMPLATE_COLUMNS, "timestamp", "request_id", "prev_hash", "hash")


SECONDARY_INDEXES_SQL = """
SELECT i.indexname, c.conname, CASE WHEN c.conname IS NULL THEN i.indexdef ELSE pg_get_constraintdef(c.oid) END
FROM pg_indexes i
LEFT JOIN pg_constraint c ON c.conindid = (quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass
WHERE i.schemaname = current_schema() AND i.tablename = 'audit_auditevent' AND c.contype IS DISTINCT FROM 'p'
ORDER BY i.indexname
"""


def secondary_indexes(cursor) -> list[tuple[str, str | None, str]]:
    """(index, constraint or None, definition) of every index but the primary key's."""
    return cursor.execute(SECONDARY_INDEXES_SQL).fetchall()


def bench_load(count: int, *, since=None) -> dict:
    """COPY the chain with the secondary indexes dropped, then rebuild them as they were, in one transaction.

    The events continue chain 0 from its head; their timestamps start at the head's, or at ``since``.
    """
    import psycopg

    from apps.audit.hashing import canonical_timestamp, event_hash
    from apps.audit.models import AuditEvent

    # COPY leaves ``chain`` to its default, 0: continue chain 0, whichever chain the newest event joined.
    head = AuditEvent.objects.filter(chain=0).order_by("-id").values("hash", "timestamp").first()
    if head is None:
        raise RuntimeError("event_record left no events to continue from")
    prev_hash, moment = head["hash"], since or head["timestamp"]
    rng = random.Random(SEED + 1)  # noqa: S311 - reproducible content, not secrets
    make = EventFactory(rng)
    templates = []
    for _ in range(TEMPLATES):
        values = make()
        del values["request_id"]
        templates.append(Template(values))
    getrandbits, step = rng.getrandbits, timedelta(microseconds=1)
    copy_sql = f"COPY audit_auditevent ({', '.join(COPY_COLUMNS)}) FROM STDIN"
    started = time.perf_counter()
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=DATABASE) as conn:
        with conn.cursor() as cursor:
            # The actor foreign key is deferred: checked at the end of COPY instead, so the indexes can be rebuilt.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            indexes = secondary_indexes(cursor)
            for index_name, constraint, _ in indexes:
                if constraint:
                    cursor.execute(f'ALTER TABLE audit_auditevent DROP CONSTRAINT "{constraint}"')
                else:
                    cursor.execute(f'DROP INDEX "{index_name}"')
            with cursor.copy(copy_sql) as copy:
                write_row = copy.write_row
                for _ in range(count):
                    template = templates[getrandbits(20) % TEMPLATES]
                    moment += step * (getrandbits(16) + 1)
                    stamp = canonical_timestamp(moment)
                    request_id = f"{getrandbits(128):032x}"
                    digest = event_hash(
                        {**template.values, "timestamp": stamp, "request_id": request_id, "prev_hash": prev_hash}
                    )
                    write_row((*template.row, stamp, request_id, prev_hash, digest))
                    prev_hash = digest
            copied = time.perf_counter()
            cursor.execute("SET maintenance_work_mem = '256MB'")
            for _, constraint, definition in indexes:
                if constraint:
                    cursor.execute(f'ALTER TABLE audit_auditevent ADD CONSTRAINT "{constraint}" {definition}')
                else:
                    # A partitioned table's index reads ON ONLY, which would leave out its partitions.
                    cursor.execute(definition.replace(" ON ONLY ", " ON ", 1))
            if secondary_indexes(cursor) != indexes:
                raise RuntimeError("the secondary indexes were not rebuilt as they were")
        conn.commit()
        loaded = time.perf_counter()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE audit_auditevent")
    return {
        "load_s": loaded - started,
        "copy_s": copied - started,
        "index_s": loaded - copied,
        "index_count": len(indexes),
        "vacuum_s": time.perf_counter() - loaded,
        "head_hash": prev_hash,
    }


# --- 3. Verification


def bench_verify() -> dict:
    from apps.audit.models import AuditEvent
    from apps.audit.verification import chain_verify

    total = AuditEvent.objects.count()
    started = time.perf_counter()
    report = chain_verify()
    elapsed = time.perf_counter() - started
    if not report.ok:
        raise RuntimeError(f"chain_verify failed: {report.summary()}")
    if report.verified != total:
        raise RuntimeError(f"chain_verify verified {report.verified} events of {total}")
    return {"verify_s": elapsed, "verify_per_s": total / elapsed, "events": total, "head_hash": report.head_hash}


# --- 4. Export


def proc_status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def export_child(path: str) -> None:
    """Child process: the sync CSV export into ``path``; prints its figures as JSON."""
    django_setup()
    from apps.audit.export import export_chunks
    from apps.audit.models import AuditEvent

    rss_before = proc_status_kb("VmRSS")
    started = time.perf_counter()
    with open(path, "wb") as handle:
        for chunk in export_chunks(AuditEvent.objects.all(), "csv"):
            handle.write(chunk)
    elapsed = time.perf_counter() - started
    django_close()
    print(json.dumps({"seconds": elapsed, "rss_before_kb": rss_before, "hwm_kb": proc_status_kb("VmHWM")}))


def file_digest(path: Path) -> tuple[str, int]:
    digest, lines = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            lines += block.count(b"\n")
    return digest.hexdigest(), lines


async def _export_async(path: Path) -> None:
    from apps.audit.export import export_chunks
    from apps.audit.models import AuditEvent
    from apps.core.responses import DatabaseStreamingResponse

    with open(path, "wb") as handle:
        async for chunk in aiter(DatabaseStreamingResponse(export_chunks(AuditEvent.objects.all(), "csv"))):
            handle.write(chunk)


def bench_export(work_dir: Path, events: int) -> dict:
    baseline_file = work_dir / "copy.csv"
    export_file = work_dir / "export.csv"
    async_file = work_dir / "export_async.csv"

    from apps.audit.export import EXPORT_COLUMNS

    baseline_query = f"SELECT {', '.join(EXPORT_COLUMNS)} FROM audit_auditevent ORDER BY id"  # noqa: S608 - our field names
    started = time.perf_counter()
    subprocess.run(
        ["psql", "-X", "-q", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, "-d", DATABASE, "-v", "ON_ERROR_STOP=1",
         "-c", f"\\copy ({baseline_query}) TO '{baseline_file}' WITH CSV HEADER"],
        check=True,
    )  # fmt: skip
    copy_s = time.perf_counter() - started

    child = subprocess.run(
        [sys.executable, __file__, "--export-child", str(export_file)],
        cwd=PROJECT_DIR,
        check=True,
        capture_output=True,
        text=True,
    )
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    export_digest, export_lines = file_digest(export_file)
    if export_lines != events + 1:
        raise RuntimeError(f"CSV export has {export_lines} lines, expected {events + 1} (header + events)")
    _, baseline_lines = file_digest(baseline_file)
    if baseline_lines != events + 1:
        raise RuntimeError(f"COPY baseline has {baseline_lines} lines, expected {events + 1}")

    # Informational, but a failure is an error of the code under test: reported, then exit status 1.
    async_s, async_error = None, ""
    started = time.perf_counter()
    try:
        asyncio.run(_export_async(async_file))
    except Exception as exc:  # reported in the summary, then exit status 1
        async_error = f"{type(exc).__name__}: {exc}"
    else:
        async_s = time.perf_counter() - started
        if file_digest(async_file)[0] != export_digest:
            async_error = "the async CSV export differs from the sync one"

    return {
        "copy_s": copy_s,
        "copy_mb": baseline_file.stat().st_size / 1e6,
        "export_s": figures["seconds"],
        "export_mb": export_file.stat().st_size / 1e6,
        "export_ratio": figures["seconds"] / copy_s,
        "export_peak_mb": figures["hwm_kb"] / 1024,
        "export_rss_before_mb": figures["rss_before_kb"] / 1024,
        "export_growth_mb": (figures["hwm_kb"] - figures["rss_before_kb"]) / 1024,
        "async_s": async_s,
        "async_error": async_error,
    }


# --- Report


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def sweep_rows(results: dict) -> list[tuple[str, str, str, bool]]:
    """Issue 21's targets: chained vs plain INSERT at 16 writers, a rate that never falls, p50 in a caller's tx;
    the first two for the Python writers and, when pgbench ran, for the server side."""
    rows = []
    for name, rates in (("writers", results["sweep"]), ("pgbench clients", results["server_sweep"])):
        rows += _sweep_target_rows(name, rates)
    rows.append(
        (
            "event_record p50 in tx (issue 21)",
            f"{results['record_in_tx_p50_ms']:.3f} ms",
            f"<= {TARGET_RECORD_IN_TX_P50_MS:g} ms",
            results["record_in_tx_p50_ms"] <= TARGET_RECORD_IN_TX_P50_MS,
        )
    )
    return rows


def _sweep_target_rows(name: str, rates: dict) -> list[tuple[str, str, str, bool]]:
    rows = []
    if 16 in rates:
        ratio = rates[16]["chain"] / rates[16]["plain"]
        rows.append((f"chained / plain, 16 {name}", f"{ratio:.2f}x", f">= {TARGET_SWEEP_RATIO_AT_16:g}x",
                     ratio >= TARGET_SWEEP_RATIO_AT_16))  # fmt: skip
    counts = sorted(rates)
    drops = [(a, b) for a, b in itertools.pairwise(counts) if rates[b]["chain"] < rates[a]["chain"]]
    if len(counts) > 1:
        worst = min(drops, key=lambda pair: rates[pair[1]]["chain"] / rates[pair[0]]["chain"], default=None)
        figure = "rises throughout" if worst is None else (
            f"{worst[0]}->{worst[1]}: {rates[worst[1]]['chain'] / rates[worst[0]]['chain'] - 1:+.0%}"
        )  # fmt: skip
        rows.append((f"chained rate, {counts[0]}..{counts[-1]} {name}", figure, "never falls", not drops))
    return rows


def report(results: dict, total_s: float) -> None:
    print()
    print(f"Summary (AUDIT_BENCH_EVENTS={AUDIT_BENCH_EVENTS:,}, {results['events']:,} events in the chain)")
    rows = [
        (
            "event_record p50, own commit",
            f"{results['record_p50_ms']:.3f} ms",
            f"<= {TARGET_RECORD_P50_MS:g} ms",
            results["record_p50_ms"] <= TARGET_RECORD_P50_MS,
        ),
        (
            "event_record p50, in caller's tx",
            f"{results['record_in_tx_p50_ms']:.3f} ms",
            f"<= {TARGET_RECORD_P50_MS:g} ms",
            results["record_in_tx_p50_ms"] <= TARGET_RECORD_P50_MS,
        ),
        (
            "chain_verify throughput",
            f"{results['verify_per_s']:,.0f} events/s",
            f">= {TARGET_VERIFY_PER_S:,} events/s",
            results["verify_per_s"] >= TARGET_VERIFY_PER_S,
        ),
        (
            "CSV export time / COPY",
            f"{results['export_ratio']:.2f}x",
            f"<= {TARGET_EXPORT_RATIO:g}x",
            results["export_ratio"] <= TARGET_EXPORT_RATIO,
        ),
        (
            "CSV export peak RSS",
            f"{results['export_peak_mb']:.0f} MB",
            f"<= {TARGET_EXPORT_PEAK_MB} MB",
            results["export_peak_mb"] <= TARGET_EXPORT_PEAK_MB,
        ),
    ]
    rows += sweep_rows(results)
    for name, figure, target, met in rows:
        print(f"  {name:<36} {figure:>20}   target {target:<20} {verdict(met)}")
    async_text = f"{results['async_s']:.1f} s" if results["async_s"] is not None else "FAILED"
    print(
        f"  informational: event_record p95 {results['record_p95_ms']:.3f} ms, plain-SQL floor p50 "
        f"{results['floor_p50_ms']:.3f} ms; bulk load {results['load_s']:.1f} s; export RSS growth "
        f"{results['export_growth_mb']:.0f} MB; async export {async_text}; total run {total_s:.0f} s"
    )
    missed = [name for name, _, _, met in rows if not met]
    missed_text = f"; missed: {', '.join(missed)}" if missed else ""
    print(f"  {len(rows) - len(missed)} of {len(rows)} targets met{missed_text}")
    if results["async_error"]:
        print(f"  ERROR: async streaming failed: {results['async_error']}")


def main() -> None:
    run_started = time.perf_counter()
    work_dir = Path(tempfile.mkdtemp(prefix="opsdeck-bench-audit-"))
    results: dict = {}
    database_create()
    try:
        environment_configure(work_dir / "data")
        django_setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(f"Audit trail, scratch database {DATABASE}, {AUDIT_BENCH_EVENTS:,} bulk events")

        results.update(bench_record())
        print(f"  event_record, {results['record_count']:,} events, one transaction each (interleaved with the floor)")
        print(
            f"    baseline plain psycopg, same statements   p50 {results['floor_p50_ms']:6.3f} ms  "
            f"p95 {results['floor_p95_ms']:6.3f} ms"
        )
        print(
            f"    event_record                              p50 {results['record_p50_ms']:6.3f} ms  "
            f"p95 {results['record_p95_ms']:6.3f} ms  ratio {results['record_p50_ms'] / results['floor_p50_ms']:.2f}x "
            "baseline (p50)"
        )
        print(
            f"    event_record inside a caller's transaction  p50 {results['record_in_tx_p50_ms']:6.3f} ms  "
            f"p95 {results['record_in_tx_p95_ms']:6.3f} ms  (commit excluded: it is the caller's)"
        )

        print(
            f"  concurrency sweep, {SWEEP_SECONDS:g} s per round, writer processes appending one event per "
            "transaction; plain INSERT = same rows and indexes, no chain"
        )
        results.update(bench_sweep())
        if results["sweep_skipped"]:
            print(
                f"    skipped {', '.join(map(str, results['sweep_skipped']))} writers: only "
                f"{results['sweep_budget']} connections free (max_connections less those in use and "
                f"{SWEEP_SPARE_CONNECTIONS} spare)"
            )

        load = bench_load(AUDIT_BENCH_EVENTS)
        results.update(load_s=load["load_s"])
        print(
            f"  bulk load, {AUDIT_BENCH_EVENTS:,} chained events: {load['load_s']:.1f} s "
            f"({AUDIT_BENCH_EVENTS / load['load_s']:,.0f} events/s; Python hashing + COPY {load['copy_s']:.1f} s, "
            f"rebuilding {load['index_count']} secondary indexes {load['index_s']:.1f} s), "
            f"VACUUM ANALYZE {load['vacuum_s']:.1f} s"
        )

        verify = bench_verify()
        if verify["head_hash"] != load["head_hash"]:
            raise RuntimeError("chain_verify ended at a different head than the one loaded")
        results.update(verify)
        print(
            f"  chain_verify, {verify['events']:,} events: {verify['verify_s']:.1f} s  "
            f"{verify['verify_per_s']:,.0f} events/s  ratio {verify['verify_per_s'] / TARGET_VERIFY_PER_S:.2f}x target"
        )

        export = bench_export(work_dir, verify["events"])
        results.update(export)
        print(f"  CSV export of {verify['events']:,} events")
        print(f"    baseline psql \\copy ... CSV   {export['copy_s']:6.1f} s  {export['copy_mb']:7.1f} MB")
        print(
            f"    export_chunks (sync)          {export['export_s']:6.1f} s  {export['export_mb']:7.1f} MB  "
            f"ratio {export['export_ratio']:.2f}x baseline"
        )
        print(
            f"      peak RSS {export['export_peak_mb']:.0f} MB (child's VmHWM), "
            f"{export['export_rss_before_mb']:.0f} MB before the export (Django set up), "
            f"growth {export['export_growth_mb']:.0f} MB"
        )
        if export["async_error"]:
            print(f"    DatabaseStreamingResponse     FAILED: {export['async_error']}")
        else:
            print(
                f"    DatabaseStreamingResponse     {export['async_s']:6.1f} s  "
                f"ratio {export['async_s'] / export['copy_s']:.2f}x baseline (same bytes as sync)"
            )
    finally:
        try:
            django_close()
        finally:
            database_drop()
            shutil.rmtree(work_dir, ignore_errors=True)
    report(results, time.perf_counter() - run_started)
    if results["async_error"]:
        sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--export-child":
        export_child(sys.argv[2])
    else:
        main()
