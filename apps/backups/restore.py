"""Database backups: verify (a real restore into a scratch database), restore over the live database, decrypt.

Every path reads the stored file through ``decrypt_chunks`` and hands the plain dump straight to its consumer
(pg_restore's stdin, or a private temporary file for SQLite), so a PostgreSQL dump never lands on disk in plain
form except where an operator asks for it (``backup_decrypt``).
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager, nullcontext
from pathlib import Path

import psycopg
from django.contrib.auth import get_user_model
from django.core.files.storage import InvalidStorageError, storages
from django.core.management.color import no_style
from django.db import connection, connections, transaction
from django.utils import timezone
from psycopg import sql

from apps.audit.models import AuditEvent
from apps.audit.services import event_record
from apps.core import formatting

from .choices import BackupStatus, BackupTrigger
from .keys import key_id
from .metrics import backup_metrics_record
from .models import Backup, BackupJob
from .selectors import RESTORABLE, VERIFIABLE
from .services import (
    READ_SIZE,
    BackupError,
    backup_create,
    backup_failure_notify,
    configured_key,
    database_connection,
    libpq_environment,
    sqlite_row_counts,
    table_row_counts,
)
from .stream import BackupFormatError, decrypt_chunks, read_header

# The format's own reasons, named as the verification report names them.
FORMAT_REASONS = {
    "wrong_key": "wrong_key",
    "truncated": "truncated",
    "corrupted": "checksum",
    "not_a_backup": "checksum",
}


class _CheckFailed(Exception):
    """One check of a backup failed; ``reason`` is the report's reason, the message says what was found."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


# --- Checks that need no database


def _storage(backup: Backup):
    try:
        return storages[backup.storage_name]
    except InvalidStorageError:
        raise BackupError(
            f"Backup #{backup.pk} is in the storage {backup.storage_name!r}, which is not configured in STORAGES."
        ) from None


def _check_file(backup: Backup) -> str:
    """The stored file exists and has the recorded size and SHA-256."""
    storage = _storage(backup)
    if not backup.path or not storage.exists(backup.path):
        raise _CheckFailed("missing", f"missing: there is no file {backup.path!r} in the {backup.storage_name} storage")
    digest, size = hashlib.sha256(), 0
    try:
        with storage.open(backup.path, "rb") as source:
            while block := source.read(READ_SIZE):
                digest.update(block)
                size += len(block)
    except OSError as exc:
        raise BackupError(
            f"Cannot read {backup.path} from the {backup.storage_name} storage: {exc.strerror or exc}."
        ) from None
    if size < backup.size_bytes:
        raise _CheckFailed("truncated", f"truncated: {size} of {backup.size_bytes} bytes")
    if size != backup.size_bytes or digest.hexdigest() != backup.sha256:
        raise _CheckFailed("checksum", "corrupted: checksum mismatch")
    return f"{formatting.count(size, 'byte')}, SHA-256 {backup.sha256}"


def _check_key(backup: Backup, key: bytes) -> str:
    """The file's header names the configured key."""
    with _storage(backup).open(backup.path, "rb") as source:
        try:
            header = read_header(source)
        except BackupFormatError as exc:
            raise _CheckFailed(FORMAT_REASONS[exc.reason], exc.message) from None
    configured = key_id(key)
    if header["key_id"] != configured:
        raise _CheckFailed(
            "wrong_key",
            f"wrong key: the file was encrypted with key {header['key_id']}, the configured key is {configured}",
        )
    return f"key {configured}"


def _refuse_unless_intact(backup: Backup, key: bytes, doing: str) -> None:
    try:
        _check_file(backup)
        _check_key(backup, key)
    except _CheckFailed as failure:
        raise BackupError(
            f"Backup #{backup.pk} cannot be {doing}: {failure.message.rstrip('.')}. Nothing was changed."
        ) from None


@contextmanager
def _plain_chunks(backup: Backup, key: bytes) -> Iterator[Iterator[bytes]]:
    with _storage(backup).open(backup.path, "rb") as source:
        yield decrypt_chunks(source, key=key)


# --- PostgreSQL


def _pg_restore_program() -> str:
    program = shutil.which("pg_restore")
    if program is None:
        raise BackupError("pg_restore is not installed: install the PostgreSQL client (postgresql-client).")
    return program


def _pg_restore(backup: Backup, key: bytes, options: list[str], *, database: str, output=subprocess.DEVNULL) -> None:
    """Feed the decrypted dump to pg_restore's stdin (its output to ``output``); raises _CheckFailed("restore", ...)
    when pg_restore fails."""
    environment = {**libpq_environment(), "PGDATABASE": database}
    program = _pg_restore_program()
    with tempfile.TemporaryFile() as errors, _plain_chunks(backup, key) as chunks:
        # stderr goes to a file, not a pipe: a pipe nobody reads while we write stdin could fill up and deadlock.
        process = subprocess.Popen(  # noqa: S603 - fixed program, fixed options
            [program, *options, "--no-password", f"--dbname={database}"],
            stdin=subprocess.PIPE,
            stdout=output,
            stderr=errors,
            env=environment,
        )
        try:
            for chunk in chunks:
                process.stdin.write(chunk)
            process.stdin.close()
        except BrokenPipeError:
            pass  # pg_restore stopped reading (--exit-on-error): its exit status and message say why
        except BaseException:
            # Killing it drops its connection, so the server rolls back: a dump that turns out damaged half-way
            # must not be committed, whatever pg_restore would make of a stream that simply ends.
            process.kill()
            process.wait()
            raise
        code = process.wait()
        errors.seek(0)
        message = errors.read().decode(errors="replace").strip()
    if code != 0:
        last = message.splitlines()[-1] if message else "no message"
        raise _CheckFailed("restore", f"pg_restore failed (exit {code}): {last}")


def _postgres_scratch_counts(backup: Backup, key: bytes) -> tuple[str, dict[str, int]]:
    """Restore into a new scratch database, count its rows, and drop it again whatever happened."""
    _pg_restore_program()  # before creating a database it would need
    scratch = f"opsdeck_verify_{backup.pk}_{secrets.token_hex(4)}"
    try:
        server = database_connection("postgres")
    except psycopg.Error as exc:
        raise BackupError(
            f"Cannot reach the 'postgres' maintenance database to create a scratch database: {exc}"
        ) from None
    with closing(server):
        try:
            server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
        except psycopg.Error as exc:
            raise BackupError(f"Cannot create a scratch database ({exc}): the database user needs CREATEDB.") from None
        try:
            _pg_restore(backup, key, ["--no-owner", "--exit-on-error"], database=scratch)
            with closing(database_connection(scratch)) as restored, restored.cursor() as cursor:
                counts = table_row_counts(cursor)
        finally:
            server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))
    return scratch, counts


def _restore_postgres(backup: Backup, key: bytes) -> None:
    database = connection.settings_dict["NAME"]
    # pg_restore --clean drops and recreates every table: this process's idle connections would keep locks or
    # stale state, so they go first (the pool too; Django opens a new one on the next query).
    connections.close_all()
    if hasattr(connection, "close_pool"):
        connection.close_pool()
    options = ["--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error"]
    try:
        with tempfile.NamedTemporaryFile() as listing:
            _pg_restore(backup, key, ["--list"], database=database, output=listing)
            listing.seek(0)
            reordered = _partition_constraints_first(listing.read().decode())
            listing.seek(0)
            listing.write(reordered.encode())
            listing.truncate()
            listing.flush()
            _pg_restore(backup, key, [*options, f"--use-list={listing.name}"], database=database)
    except _CheckFailed as failure:
        raise BackupError(f"The restore failed and was rolled back, the database is unchanged: {failure}") from None


_TABLE_ATTACH = re.compile(r"^\d+; \d+ \d+ TABLE ATTACH (\S+) (\S+) ")
_CONSTRAINT = re.compile(r"^\d+; \d+ \d+ CONSTRAINT (\S+) (\S+) ")


def _partition_constraints_first(listing: str) -> str:
    """pg_restore's list with the partitions' primary key and unique constraints before every other constraint.

    --clean drops in the reverse of the list, and pg_dump lists a partitioned table's constraints before its
    partitions' (the audit trail is partitioned by month, migration audit/0013): dropping a partition's inherited
    constraint first fails. Listed the other way round, the parent's goes first and takes its partitions' along.
    """
    lines = listing.splitlines()
    partitions = {match.groups() for line in lines if (match := _TABLE_ATTACH.match(line))}
    constraints = [n for n, line in enumerate(lines) if _CONSTRAINT.match(line)]
    moved = {n for n in constraints if _CONSTRAINT.match(lines[n]).groups() in partitions}
    others = [n for n in constraints if n not in moved]
    if not moved or not others:
        return listing
    order = [n for n in range(len(lines)) if n not in moved]
    at = order.index(others[0])
    order[at:at] = sorted(moved)
    return "\n".join(lines[n] for n in order) + "\n"


# --- SQLite


@contextmanager
def _sqlite_copy(backup: Backup, key: bytes, folder: str | None = None) -> Iterator[Path]:
    """The decrypted database in a private temporary file (mode 0600), deleted afterwards."""
    descriptor, name = tempfile.mkstemp(prefix=".opsdeck-restore-", suffix=".sqlite3", dir=folder)
    path = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as out, _plain_chunks(backup, key) as chunks:
            for chunk in chunks:
                out.write(chunk)
        yield path
    finally:
        path.unlink(missing_ok=True)


def _sqlite_integrity(database: sqlite3.Connection) -> None:
    try:
        problems = [row[0] for row in database.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:
        raise _CheckFailed("restore", f"the restored database does not open: {exc}") from None
    if problems != ["ok"]:
        raise _CheckFailed("restore", f"PRAGMA integrity_check: {'; '.join(problems[:5])}")


def _sqlite_scratch_counts(backup: Backup, key: bytes) -> tuple[str, dict[str, int]]:
    with _sqlite_copy(backup, key) as path, closing(sqlite3.connect(path)) as restored:
        _sqlite_integrity(restored)
        return "a temporary SQLite file", sqlite_row_counts(restored)


def _restore_sqlite(backup: Backup, key: bytes) -> None:
    live = Path(connection.settings_dict["NAME"])
    with _sqlite_copy(backup, key, folder=str(live.parent)) as path, closing(sqlite3.connect(path)) as restored:
        try:
            _sqlite_integrity(restored)
        except _CheckFailed as failure:
            raise BackupError(f"The backup does not restore, the database is unchanged: {failure}") from None
        connections.close_all()
        # SQLite's backup API replaces the live database's pages in one write transaction, through SQLite's own
        # locking and WAL: atomic like renaming a file over it, but safe for a portal that has the file open
        # (a rename under an open WAL database would let its old -wal file be replayed over the new content).
        try:
            with closing(sqlite3.connect(live, timeout=30)) as target:
                restored.backup(target)
        except sqlite3.OperationalError as exc:
            raise BackupError(f"The restore failed, the database is unchanged: {exc}.") from None


# --- Verify


def _count_differences(recorded: dict[str, int], restored: dict[str, int]) -> list[str]:
    differences = []
    for table in sorted(recorded.keys() | restored.keys()):
        expected, found = recorded.get(table), restored.get(table)
        if expected != found:
            expected_text = "absent" if expected is None else formatting.count(expected, "row")
            found_text = "absent" if found is None else formatting.count(found, "row")
            differences.append(f"{table}: {expected_text} recorded, {found_text} restored")
    return differences


def _scratch_counts(backup: Backup, key: bytes) -> tuple[str, dict[str, int]]:
    try:
        if backup.database_engine == "postgresql":
            if connection.vendor != "postgresql":
                raise BackupError(f"Backup #{backup.pk} is a PostgreSQL dump: verifying it needs a PostgreSQL server.")
            return _postgres_scratch_counts(backup, key)
        if backup.database_engine == "sqlite":
            return _sqlite_scratch_counts(backup, key)
    except BackupFormatError as exc:
        raise _CheckFailed(FORMAT_REASONS[exc.reason], exc.message) from None
    except psycopg.Error as exc:
        raise _CheckFailed("restore", f"the scratch database failed: {exc}".strip()) from None
    raise BackupError(f"Backup #{backup.pk} is of a {backup.database_engine} database, which cannot be verified.")


def _verification_checks(backup: Backup, key: bytes, checks: list[dict], restore_starting: Callable[[], None]) -> int:
    """Run the checks in order, appending each result; returns the number of tables compared."""

    def passed(name: str, detail: str) -> None:
        checks.append({"check": name, "ok": True, "detail": detail})

    passed("checksum", _check_file(backup))
    passed("key", _check_key(backup, key))
    restore_starting()
    where, counts = _scratch_counts(backup, key)
    passed("restore", f"restored into {where}")
    differences = _count_differences(backup.row_counts, counts)
    if differences:
        tables = formatting.count(len(differences), "table")
        raise _CheckFailed("row_counts", f"row counts differ in {tables}: {'; '.join(differences)}")
    tables, rows = formatting.count(len(counts), "table"), formatting.count(sum(counts.values()), "row")
    passed("row_counts", f"{tables}, {rows}, as recorded")
    return len(counts)


def verifiable_key(backup: Backup) -> bytes:
    """The key to verify ``backup`` with; BackupError (409) when it cannot be verified: no stored file, no key."""
    if backup.status not in VERIFIABLE:
        raise BackupError(f"Backup #{backup.pk} is {backup.status}: only completed backups can be verified.")
    return configured_key()


def backup_verify(*, backup: Backup, actor=None, restore_starting: Callable[[], None] = lambda: None) -> Backup:
    """Prove that a backup restores: checksum, key, a real restore into scratch space, and row counts.

    PostgreSQL: pg_restore into a temporary database (dropped afterwards, whatever happened); SQLite: a private
    temporary file and ``PRAGMA integrity_check``. The backup becomes ``verified`` or ``verify_failed``; its
    ``verification`` report says which check failed and why (``reason``: missing, checksum, truncated,
    wrong_key, restore or row_counts). A bad backup never raises; BackupError means the check itself could not
    run (no key configured, pg_restore missing, a backup that was never completed).

    ``restore_starting()`` is called after the file checks, before the scratch restore; an exception it raises
    stops the verification and leaves the backup as it was.
    """
    key = verifiable_key(backup)
    started = time.monotonic()
    checks: list[dict] = []
    reason, message, tables = None, "", 0
    try:
        tables = _verification_checks(backup, key, checks, restore_starting)
    except _CheckFailed as failure:
        reason, message = failure.reason, failure.message
        checks.append({"check": reason, "ok": False, "detail": message})
    backup.verification = {
        "ok": reason is None,
        "reason": reason,
        "message": message or "The backup restores and holds the recorded rows.",
        "checks": checks,
        "tables_compared": tables,
        "duration_seconds": round(time.monotonic() - started, 3),
    }
    backup.status = BackupStatus.VERIFIED if reason is None else BackupStatus.VERIFY_FAILED
    # ``error`` carries the one-line reason that health checks, the admin and the scheduled task show.
    backup.error = message
    backup.verified_at = timezone.now()
    backup.save(update_fields=["status", "verified_at", "verification", "error"])
    backup_metrics_record(backup)
    event_record(
        action="backup.verified",
        actor=actor,
        obj=backup,
        outcome="success" if reason is None else "failure",
        changes={"reason": reason, "message": backup.verification["message"], "tables_compared": tables},
    )
    if reason is not None:
        backup_failure_notify(backup, stage="verify", error=message)
    return backup


# --- Restore


def _rows_rewrite(model, rows: list[dict]) -> None:
    """Put back a table's rows as they were before the restore; links to users the restored database lacks
    become null."""
    user_model = get_user_model()
    user_fields = [
        field.attname
        for field in model._meta.concrete_fields
        if field.is_relation and field.related_model is user_model
    ]
    user_ids = {row[name] for row in rows for name in user_fields} - {None}
    users = set(user_model.objects.filter(pk__in=user_ids).values_list("pk", flat=True))
    rows = [{**row, **{name: row[name] if row[name] in users else None for name in user_fields}} for row in rows]
    fields = [field.name for field in model._meta.concrete_fields if not field.primary_key]
    # Inserting stamps auto_now(_add) fields with the current time: the recorded times are put back after.
    stamped = [field.name for field in model._meta.concrete_fields if getattr(field, "auto_now_add", False)]
    model.objects.exclude(pk__in=[row["id"] for row in rows]).delete()
    model.objects.bulk_create(
        [model(**row) for row in rows], update_conflicts=True, unique_fields=["id"], update_fields=fields
    )
    if stamped and rows:
        model.objects.bulk_update([model(**row) for row in rows], stamped)
    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), [model]):
            cursor.execute(statement)


def _catalogue_rewrite(catalogue: dict) -> None:
    """Put back the backup records and the backup jobs as they were before the restore.

    The restored tables describe the database at backup time, but the files in storage (the safety backup among
    them) are still there: without this the catalogue would forget them, show the restored backup as running, and
    a job that was running when it was taken would look lost and run again.
    """
    with transaction.atomic():
        for model, rows in catalogue.items():
            _rows_rewrite(model, rows)


def restore_refusal_check(backup: Backup) -> bytes:
    """Raise BackupError if ``backup`` cannot be restored here (not completed or verified, another database
    engine, no pg_restore, no key, a file that fails its checksum or key check); else return the key."""
    if backup.status not in RESTORABLE:
        raise BackupError(
            f"Backup #{backup.pk} is {backup.status}: only completed or verified backups can be restored."
        )
    if backup.database_engine != connection.vendor:
        raise BackupError(
            f"Backup #{backup.pk} is of a {backup.database_engine} database; this portal runs on {connection.vendor}."
        )
    if connection.vendor == "postgresql":
        _pg_restore_program()
    key = configured_key()
    _refuse_unless_intact(backup, key, "restored")
    return key


def backup_restore(
    *,
    backup: Backup,
    actor,
    restore_starting: Callable[[], None] = lambda: None,
    while_restoring: Callable[[], AbstractContextManager] = nullcontext,
) -> Backup:
    """Replace the live database with a backup; returns the safety backup taken first.

    Refused, before anything is touched, when ``restore_refusal_check`` refuses. PostgreSQL: ``pg_restore --clean
    --single-transaction`` fed from the decrypted stream (all or nothing); SQLite: the decrypted copy must pass
    ``integrity_check``, then replaces the database in one transaction. The audit trail lives in the restored
    database, so the restore is recorded there afterwards, and the backup records and backup jobs are kept as
    they were before the restore. ``restore_starting`` is called once the safety backup is stored, just before
    the database is replaced; the replacing runs inside ``while_restoring()``.
    """
    key = restore_refusal_check(backup)
    if connection.in_atomic_block:
        # Restoring closes this process's connections, and pg_dump/pg_restore cannot see an open transaction.
        raise BackupError("A restore cannot run inside a database transaction.")
    try:
        safety = backup_create(trigger=BackupTrigger.SAFETY, actor=actor)
    except BackupError as exc:
        raise BackupError(f"The safety backup failed, so nothing was restored: {exc}") from None
    restore_starting()
    catalogue = {model: list(model.objects.values()) for model in (Backup, BackupJob)}
    audit_head = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    started = time.monotonic()
    changes = {"safety_backup_id": safety.pk, "restored_by": actor.get_username() if actor is not None else ""}
    try:
        with while_restoring():
            (_restore_postgres if connection.vendor == "postgresql" else _restore_sqlite)(backup, key)
    except BaseException as exc:
        # The restore changed nothing, so the record goes into the trail it would have replaced.
        event_record(action="backup.restored", actor=actor, obj=backup, outcome="failure", changes=changes)
        if isinstance(exc, BackupFormatError):
            raise BackupError(f"The restore failed and was rolled back, the database is unchanged: {exc}") from None
        raise
    _catalogue_rewrite(catalogue)
    # The actor may postdate the backup: then the trail names them instead of linking a user that is not there.
    restored_actor = get_user_model().objects.filter(pk=getattr(actor, "pk", None)).first()
    event_record(
        action="backup.restored",
        actor=restored_actor,
        obj=backup,
        changes={
            **changes,
            "duration_seconds": round(time.monotonic() - started, 3),
            "audit_events_before_restore": audit_head,
        },
    )
    return Backup.objects.get(pk=safety.pk)


# --- Decrypt


def backup_decrypt(*, backup: Backup, output: Path, actor) -> Path:
    """Write the plain dump to a new file ``output`` (mode 0600) for tools outside Opsdeck.

    PostgreSQL: the custom-format dump that ``pg_restore`` reads; SQLite: the database file. Refuses an existing
    ``output`` and a file that fails its checksum or key check; a failure half-way leaves no file behind.
    """
    if backup.status not in VERIFIABLE:
        raise BackupError(f"Backup #{backup.pk} is {backup.status}: it has no complete file to decrypt.")
    key = configured_key()
    _refuse_unless_intact(backup, key, "decrypted")
    output = Path(output)
    try:
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BackupError(f"{output} already exists; choose a new file name.") from None
    except OSError as exc:
        raise BackupError(f"Cannot create {output}: {exc.strerror}.") from None
    try:
        with os.fdopen(descriptor, "wb") as out, _plain_chunks(backup, key) as chunks:
            for chunk in chunks:
                out.write(chunk)
    except BaseException as exc:
        output.unlink(missing_ok=True)
        if isinstance(exc, BackupFormatError):
            raise BackupError(f"Backup #{backup.pk} cannot be decrypted: {exc}") from None
        if isinstance(exc, OSError):
            raise BackupError(f"Writing {output} failed: {exc.strerror or exc}.") from None
        raise
    event_record(action="backup.decrypted", actor=actor, obj=backup, changes={"output": str(output)})
    return output
