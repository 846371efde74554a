"""Database backups: create (streamed through compression and encryption into storage)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import psycopg
from django.core.files.storage import storages
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from apps.audit.services import event_record
from apps.core.errors import ApplicationError
from apps.core.events import notify

from .choices import BackupStatus, BackupTrigger
from .keys import BackupKeyError, backup_key, key_id
from .metrics import backup_metrics_record
from .models import Backup
from .selectors import VERIFIABLE
from .stream import EncryptingWriter

STORAGE_NAME = "backups"
READ_SIZE = 1 << 20


class BackupError(ApplicationError):
    """A backup operation failed or was refused; the message says why and what to do."""

    status = 409
    code = "backup_failed"


def configured_key() -> bytes:
    """The backup key from the settings; a missing or malformed key is a BackupError naming the setting."""
    try:
        return backup_key()
    except BackupKeyError as exc:
        raise BackupError(str(exc)) from None


def backup_storage():
    return storages[STORAGE_NAME]


# --- What the database holds


def _applied_migrations(cursor) -> dict[str, str]:
    """Latest applied migration per app, read through ``cursor`` (the snapshot being dumped)."""
    cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
    return dict(cursor.fetchall())


def table_row_counts(cursor) -> dict[str, int]:
    quote = connection.ops.quote_name
    counts = {}
    for table in sorted(connection.introspection.table_names(cursor)):
        cursor.execute(f"SELECT COUNT(*) FROM {quote(table)}")  # noqa: S608 - names from the catalogue
        counts[table] = cursor.fetchone()[0]
    return counts


# --- Create


class BackupWatcher:
    """Follows a backup being written. This one does nothing (the command line, the schedule); a backup job's
    records the backup and its progress, and stops the dumper when the job is cancelled."""

    def started(self, backup: Backup) -> None:
        """The backup has its row (status running)."""

    def dumping(self, stop: Callable[[], None]) -> None:
        """The dumper runs; ``stop()`` kills it (the backup then fails)."""

    def written(self, backup: Backup, size: int) -> None:
        """``size`` bytes of the encrypted file are written; may raise to stop the backup."""


def backup_create(*, trigger: str = BackupTrigger.USER, actor=None, watcher: BackupWatcher | None = None) -> Backup:
    """Dump the database into an encrypted, checksummed file in the backup storage.

    PostgreSQL: ``pg_dump --format=custom`` of a snapshot whose row counts are
    recorded from the same snapshot; SQLite: the online backup API. The plain
    dump goes from the dumper through compression and encryption straight into
    storage: it never lands on disk and is never whole in memory. A failure
    leaves a ``failed`` record and no file.
    """
    watcher = watcher or BackupWatcher()
    key = configured_key()
    backup = Backup.objects.create(
        status=BackupStatus.RUNNING,
        compression=_compression(),
        key_id=key_id(key),
        storage_name=STORAGE_NAME,
        database_engine=connection.vendor,
        trigger=trigger,
        triggered_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    backup.path = f"opsdeck-{timezone.now():%Y%m%dT%H%M%SZ}-{backup.pk}.backup"
    started = time.monotonic()
    storage = backup_storage()
    watcher.started(backup)
    try:
        if location := getattr(storage, "location", None):
            Path(location).mkdir(parents=True, exist_ok=True)
        with _dump_source(backup, watcher) as chunks, storage.open(backup.path, "wb") as out:
            writer = EncryptingWriter(out, key=key, compression=backup.compression)
            for chunk in chunks:
                writer.write(chunk)
                watcher.written(backup, writer.bytes_out)
            writer.close()
    except BaseException as exc:
        backup_failed(backup, _failure_message(exc), actor=actor)
        if isinstance(exc, Exception) and not isinstance(exc, BackupError):
            raise BackupError(backup.error) from exc
        raise
    backup.status = BackupStatus.COMPLETED
    backup.size_bytes, backup.plain_bytes, backup.sha256 = writer.bytes_out, writer.bytes_in, writer.sha256
    backup.finished_at = timezone.now()
    backup.duration_seconds = round(time.monotonic() - started, 3)
    backup.save()
    event_record(
        action="backup.created",
        actor=actor,
        obj=backup,
        changes={"size_bytes": backup.size_bytes, "sha256": backup.sha256, "key_id": backup.key_id},
    )
    backup_metrics_record(backup)
    return backup


def backup_failed(backup: Backup, error: str, *, actor=None) -> None:
    """Record that writing a backup failed: no file is left, the record says why (audited)."""
    backup_storage().delete(backup.path)
    backup.status, backup.error, backup.finished_at = BackupStatus.FAILED, error, timezone.now()
    backup.save()
    event_record(action="backup.created", actor=actor, obj=backup, outcome="failure", changes={"error": error})
    backup_failure_notify(backup, stage="create", error=error)


def backup_failure_notify(backup: Backup, *, stage: str, error: str) -> None:
    """Announce ``backup.failed``: the backup (``stage`` "create") or its verification ("verify") failed."""
    doing = "failed" if stage == "create" else "failed verification"
    reason = error.strip().splitlines()[0] if error.strip() else "no reason recorded"
    notify(
        "backup.failed",
        data={
            "backup_id": backup.pk,
            "stage": stage,
            "error": error,
            "path": reverse("backups_page:detail", args=[backup.pk]),
        },
        obj=backup,
        summary=f"Backup #{backup.pk} {doing}: {reason}",
    )


# --- Handing out the stored file


def _require_stored_file(backup: Backup) -> None:
    # Running and failed backups never had a file; pruned ones had theirs deleted.
    if backup.status not in VERIFIABLE:
        raise BackupError(f"Backup #{backup.pk} is {backup.get_status_display().lower()}: it has no stored file.")


def backup_file_open(*, backup: Backup, actor):
    """The stored, encrypted file of a backup, opened for a download; audited as backup.downloaded."""
    _require_stored_file(backup)
    try:
        file = backup_storage().open(backup.path, "rb")
    except FileNotFoundError:
        raise BackupError(
            f"The file of backup #{backup.pk} ({backup.path}) is missing from the backup storage."
        ) from None
    event_record(action="backup.downloaded", actor=actor, obj=backup, changes={"sha256": backup.sha256})
    return file


def backup_manifest(*, backup: Backup, actor) -> Backup:
    """The backup whose manifest is handed out (checksum, key id, row counts); audited."""
    _require_stored_file(backup)
    event_record(action="backup.manifest_downloaded", actor=actor, obj=backup)
    return backup


def _compression() -> str:
    from django.conf import settings

    return settings.BACKUP_COMPRESSION


def _failure_message(exc: BaseException) -> str:
    if isinstance(exc, BackupError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"Writing the backup failed: {exc.strerror or exc} (is the backup storage full or not writable?)."
    return f"{type(exc).__name__}: {exc}"


@contextmanager
def _dump_source(backup: Backup, watcher: BackupWatcher) -> Iterator[Iterator[bytes]]:
    if connection.vendor == "postgresql":
        with _postgres_dump(backup, watcher) as chunks:
            yield chunks
    elif connection.vendor == "sqlite":
        yield _sqlite_dump(backup)
    else:
        raise BackupError(f"Backups support PostgreSQL and SQLite, not {connection.vendor}.")


@contextmanager
def _postgres_dump(backup: Backup, watcher: BackupWatcher) -> Iterator[Iterator[bytes]]:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupError("pg_dump is not installed: install the PostgreSQL client (postgresql-client).")
    # A repeatable-read transaction exports its snapshot: pg_dump dumps exactly what the row counts
    # recorded here see, even while the portal keeps writing (the audit trail, jobs). It holds a connection of its
    # own, so that the portal's connection stays free to record progress meanwhile.
    with closing(database_connection(connection.settings_dict["NAME"])) as snapshot_holder:
        cursor = snapshot_holder.cursor()
        cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot(), current_setting('server_version')")
        snapshot, server_version = cursor.fetchone()
        backup.server_version = f"PostgreSQL {server_version}"
        backup.row_counts = table_row_counts(cursor)
        backup.migrations = _applied_migrations(cursor)
        process = subprocess.Popen(  # noqa: S603 - fixed program, arguments from settings
            [pg_dump, "--format=custom", "--compress=0", f"--snapshot={snapshot}", "--no-password"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=libpq_environment(),
        )
        watcher.dumping(process.kill)
        try:
            yield iter(lambda: process.stdout.read(READ_SIZE), b"")
        finally:
            process.stdout.close()
            stderr = process.stderr.read().decode(errors="replace").strip()
            code = process.wait()
    if code != 0:
        raise BackupError(_pg_dump_error(stderr, code))


def _pg_dump_error(stderr: str, code: int) -> str:
    if code < 0:
        return f"pg_dump was stopped by signal {-code} (the backup was cancelled, or its worker stopped)."
    if "server version mismatch" in stderr or "aborting because of server version mismatch" in stderr:
        return f"pg_dump is older than the database server: {stderr.splitlines()[-1]}. Install a matching client."
    return f"pg_dump failed (exit {code}): {stderr.splitlines()[-1] if stderr else 'no message'}"


def database_connection(database: str) -> psycopg.Connection:
    """A plain autocommit connection with the portal's credentials to ``database`` (a snapshot to export, or
    CREATE/DROP DATABASE, which refuse transactions)."""
    params = connection.get_connection_params()
    params["dbname"] = database
    return psycopg.connect(**params, autocommit=True)


def libpq_environment() -> dict[str, str]:
    """The connection settings for pg_dump / pg_restore, passed in the environment (never on the command line)."""
    import os

    database = connection.settings_dict
    environment = {name: value for name, value in os.environ.items() if not name.startswith("PG")}
    environment.update(
        {
            "PGHOST": str(database.get("HOST") or ""),
            "PGPORT": str(database.get("PORT") or ""),
            "PGUSER": str(database.get("USER") or ""),
            "PGDATABASE": str(database["NAME"]),
        }
    )
    if database.get("PASSWORD"):
        environment["PGPASSWORD"] = str(database["PASSWORD"])
    return {name: value for name, value in environment.items() if value}


def sqlite_row_counts(database: sqlite3.Connection) -> dict[str, int]:
    """Rows per table of a SQLite database opened with the sqlite3 module (also the restored copy when verifying)."""
    cursor = database.cursor()
    tables = cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall()
    return {
        table: cursor.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]  # noqa: S608
        for (table,) in tables
        if not table.startswith("sqlite_")
    }


def _sqlite_dump(backup: Backup) -> Iterator[bytes]:
    # The online backup API copies a consistent database into memory (embedded databases are small),
    # so the plain copy never lands on disk; its bytes then go through the same pipeline.
    source = sqlite3.connect(connection.settings_dict["NAME"])
    copy = sqlite3.connect(":memory:")
    try:
        source.backup(copy)
        backup.server_version = f"SQLite {sqlite3.sqlite_version}"
        backup.row_counts = sqlite_row_counts(copy)
        backup.migrations = _applied_migrations(copy.cursor())
        image = copy.serialize()
    finally:
        source.close()
        copy.close()
    view = memoryview(image)
    for start in range(0, len(view), READ_SIZE):
        yield bytes(view[start : start + READ_SIZE])
