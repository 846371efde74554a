"""Backups benchmark: `backup create` against plain `pg_dump --format=custom`, then verify and restore.

Builds a scratch PostgreSQL database of about BACKUP_BENCH_MB (default 1,024) MB
of table data (dropped first if present, dropped at the end), migrates it, then:

1. plain `pg_dump --format=custom` of the database to a file (the baseline);
2. `backup_create` (pg_dump of a snapshot, zstd, AES-256-GCM, into the backup
   storage) — ratio to the baseline, target <= 1.3;
3. `backup_verify` (checksum, decrypt, pg_restore into a scratch database,
   row counts compared) and `backup_restore` (safety backup, then restore).

    .venv/bin/python benchmarks/backups.py
    BACKUP_BENCH_MB=100 .venv/bin/python benchmarks/backups.py   # quick try
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.portal import PG, admin_execute, verdict

DATABASE = "opsdeck_bench_backups"
SIZE_MB = int(os.environ.get("BACKUP_BENCH_MB", "1024"))
ROW_BYTES = 200
TARGET_RATIO = 1.3


def database_fill(size_mb: int) -> tuple[int, float]:
    """Rows of varied text (compressible like real data, not trivially) until the table holds ``size_mb``."""
    import psycopg

    rows = size_mb * 2**20 // ROW_BYTES
    with psycopg.connect(f"{PG}/{DATABASE}", autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE bench_events (id bigint PRIMARY KEY, kind text, payload text, amount numeric, at timestamptz)"
        )
        connection.execute(
            """
            INSERT INTO bench_events
            SELECT n, (ARRAY['job', 'login', 'upload', 'report'])[1 + n %% 4],
                   md5(n::text) || ' ' || repeat(chr(97 + n %% 26), 40) || ' ' || md5((n * 7)::text)
                   || ' event number ' || n || ' ' || md5((n * 13)::text),
                   (n %% 100000) / 100.0, now() - make_interval(secs => n)
            FROM generate_series(1, %s) AS n
            """,
            [rows],
        )
        connection.execute("VACUUM ANALYZE bench_events")
        size = connection.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return rows, size / 2**20


def plain_pg_dump(output: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["pg_dump", "--format=custom", "--file", str(output), "--dbname", f"{PG}/{DATABASE}"],
        check=True,
    )
    return time.perf_counter() - started


def main() -> int:
    admin_execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    admin_execute(f"CREATE DATABASE {DATABASE}")
    with tempfile.TemporaryDirectory(prefix="opsdeck-bench-backups-") as directory:
        data_dir = Path(directory)
        os.environ.update(
            {
                "DATABASE_URL": f"{PG}/{DATABASE}",
                "DJANGO_SETTINGS_MODULE": "project.settings.local",
                "OPSDECK_DATA_DIR": str(data_dir),
                "LOG_LEVEL": "warning",
            }
        )
        os.environ.pop("REDIS_URL", None)
        try:
            import django
            from django.core.management import call_command

            django.setup()
            call_command("migrate", verbosity=0)
            started = time.perf_counter()
            rows, size_mb = database_fill(SIZE_MB)
            print(f"Backups: scratch database {DATABASE}, {size_mb:,.0f} MB ({rows:,} rows of table data)")
            print(f"  filled in {time.perf_counter() - started:.1f} s")

            baseline = plain_pg_dump(data_dir / "plain.dump")
            baseline_mb = (data_dir / "plain.dump").stat().st_size / 2**20

            from apps.backups.restore import backup_restore, backup_verify
            from apps.backups.services import backup_create

            started = time.perf_counter()
            backup = backup_create()
            created = time.perf_counter() - started
            ratio = created / baseline
            print(f"  plain pg_dump --format=custom   {baseline:7.1f} s   {baseline_mb:8,.0f} MB")
            print(
                f"  backup create (zstd + AES-GCM)  {created:7.1f} s   {backup.size_bytes / 2**20:8,.0f} MB"
                f"   ratio {ratio:.2f}"
            )

            started = time.perf_counter()
            backup = backup_verify(backup=backup)
            verified = time.perf_counter() - started
            print(f"  verify (restore into a scratch database, counts compared)  {verified:7.1f} s  {backup.status}")
            if backup.status != "verified":
                raise RuntimeError(f"verification failed: {backup.verification}")

            started = time.perf_counter()
            safety = backup_restore(backup=backup, actor=None)
            restored = time.perf_counter() - started
            print(f"  restore (safety backup #{safety.pk} first, then pg_restore)  {restored:7.1f} s")

            print("Summary")
            met = verdict(ratio <= TARGET_RATIO)
            print(f"  backup create / plain pg_dump   {ratio:5.2f}   target <= {TARGET_RATIO}   {met}")
            print(f"  informational: verify {verified:.1f} s, restore {restored:.1f} s")
        finally:
            from django.db import connections

            connections.close_all()
            for connection in connections.all(initialized_only=True):
                if hasattr(connection, "close_pool"):
                    connection.close_pool()
            admin_execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
