"""Backups end to end on real PostgreSQL with real pg_dump/pg_restore: verify by restore, restore, decrypt, the CLI,
and the embedded SQLite path through `manage.py backup` in a child process."""

import hashlib
import json
import sqlite3
import stat
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.backups.choices import BackupStatus, BackupTrigger
from apps.backups.keys import generate_key
from apps.backups.models import Backup, BackupJob
from apps.backups.restore import backup_decrypt, backup_restore, backup_verify
from apps.backups.services import BackupError, backup_create
from apps.core.formatting import count
from tests.factories import UserFactory
from tests.helpers import clean_environment, manage

# Restoring rewrites these on purpose: the backup records and jobs are put back as they were before the restore (the
# files are still in storage), and the audit trail gains the restore event.
CATALOGUE_TABLES = {"backups_backup", "backups_backupjob"}
REWRITTEN_BY_RESTORE = {*CATALOGUE_TABLES, AuditEvent._meta.db_table}


@pytest.fixture
def backup_dir(settings, tmp_path) -> Path:
    location = tmp_path / "backups"
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(location)}},
    }
    return location


@pytest.fixture
def people(transactional_db):
    """Rows that the tests change and delete after a backup (pg_dump runs in another process: they are committed)."""
    users = [UserFactory(username=f"person-{number}") for number in range(3)]
    Group.objects.create(name="night shift")
    return users


def _table_fingerprints(where: dict[str, str] | None = None) -> dict[str, tuple[int, str]]:
    """Rows and an MD5 of every row's contents, per table; ``where`` restricts some tables to a condition."""
    quote = connection.ops.quote_name
    fingerprints = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            condition = (where or {}).get(table, "TRUE")
            cursor.execute(
                f"SELECT COUNT(*), md5(COALESCE(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "  # noqa: S608
                f"FROM {quote(table)} t WHERE {condition}"
            )
            fingerprints[table] = cursor.fetchone()
    return fingerprints


def _database_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return cursor.fetchone() is not None


def _stored_file(backup_dir: Path, backup: Backup) -> Path:
    return backup_dir / backup.path


def test_backup_round_trip_restores_every_row_exactly(backup_dir, people, admin_user):
    audit_head = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    before = _table_fingerprints()
    backup = backup_create(actor=admin_user)
    assert backup.status == BackupStatus.COMPLETED
    assert _stored_file(backup_dir, backup).stat().st_size == backup.size_bytes

    verified = backup_verify(backup=backup, actor=admin_user)
    assert verified.status == BackupStatus.VERIFIED, verified.verification
    report = verified.verification
    assert report["ok"] is True
    assert report["reason"] is None
    assert [check["check"] for check in report["checks"]] == ["checksum", "key", "restore", "row_counts"]
    assert report["tables_compared"] == len(backup.row_counts) > 20
    scratch = report["checks"][2]["detail"].removeprefix("restored into ")
    assert scratch.startswith(f"opsdeck_verify_{backup.pk}_")
    assert not _database_exists(scratch)

    job = BackupJob.objects.create(operation="verify", backup=backup, owner=admin_user, status="completed")
    people[0].delete()
    people[1].email = "changed@example.test"
    people[1].save()
    UserFactory(username="joined-after-the-backup")
    Group.objects.filter(name="night shift").delete()
    assert _table_fingerprints() != before

    safety = backup_restore(backup=backup, actor=admin_user)

    # Every table as it was; the audit trail up to the backup (the restore is recorded after it).
    restored = _table_fingerprints(where={AuditEvent._meta.db_table: f"id <= {audit_head or 0}"})
    for table, fingerprint in before.items():
        if table not in CATALOGUE_TABLES:
            assert restored[table] == fingerprint, table
    assert set(User.objects.values_list("username", flat=True)) >= {"person-0", "person-1", "person-2"}
    assert not User.objects.filter(username="joined-after-the-backup").exists()
    assert User.objects.get(username="person-1").email == "person-1@example.test"
    event = AuditEvent.objects.order_by("-id").first()
    assert (event.action, event.outcome, event.actor_id) == ("backup.restored", "success", admin_user.pk)
    assert json.loads(event.changes_text)["safety_backup_id"] == safety.pk

    # The backup records survive the restore: the safety backup can undo it.
    assert safety.trigger == BackupTrigger.SAFETY
    assert safety.status == BackupStatus.COMPLETED
    assert _stored_file(backup_dir, safety).is_file()
    kept = Backup.objects.get(pk=backup.pk)
    assert (kept.status, kept.started_at) == (BackupStatus.VERIFIED, backup.started_at)
    # So do the backup jobs, which the restored tables would otherwise not know (or show as running).
    assert list(BackupJob.objects.values_list("pk", "status", "backup_id", "created_at")) == [
        (job.pk, "completed", backup.pk, job.created_at)
    ]
    assert backup_verify(backup=safety).status == BackupStatus.VERIFIED


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGES = {
    "corrupted byte": (_corrupt, "checksum", "corrupted: checksum mismatch"),
    "truncated file": (_truncate, "truncated", "truncated: "),
    "wrong key": (None, "wrong_key", "wrong key: the file was encrypted with key "),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_backup_fails_verify_with_its_reason_and_restore_is_refused_untouched(
    damage, backup_dir, people, admin_user, settings
):
    damage_file, reason, message = DAMAGES[damage]
    backup = backup_create(actor=admin_user)
    if damage_file is None:
        settings.BACKUP_ENCRYPTION_KEY = generate_key()
    else:
        damage_file(_stored_file(backup_dir, backup))
    marker = Group.objects.create(name="created after the backup")
    backups_before = Backup.objects.count()

    with pytest.raises(BackupError, match=f"cannot be restored: {message}.*Nothing was changed"):
        backup_restore(backup=backup, actor=admin_user)
    assert Group.objects.filter(pk=marker.pk).exists()
    assert Backup.objects.count() == backups_before, "no safety backup: the refusal came before anything else"

    verified = backup_verify(backup=backup, actor=admin_user)
    assert verified.status == BackupStatus.VERIFY_FAILED
    assert verified.verification["ok"] is False
    assert verified.verification["reason"] == reason
    assert verified.verification["message"].startswith(message)
    assert verified.error == verified.verification["message"]
    if damage == "truncated file":
        size = _stored_file(backup_dir, backup).stat().st_size
        assert verified.verification["message"] == f"truncated: {size} of {backup.size_bytes} bytes"
    event = AuditEvent.objects.filter(action="backup.verified").latest("id")
    assert event.outcome == "failure"
    assert json.loads(event.changes_text)["reason"] == reason


def test_tampering_that_also_rewrites_the_recorded_checksum_fails_decryption(backup_dir, people):
    backup = backup_create()
    path = _stored_file(backup_dir, backup)
    _corrupt(path)
    backup.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    backup.save()

    verified = backup_verify(backup=backup)

    assert verified.status == BackupStatus.VERIFY_FAILED
    assert verified.verification["reason"] == "checksum"
    assert "failed authentication" in verified.verification["message"]
    assert [check["check"] for check in verified.verification["checks"]] == ["checksum", "key", "checksum"]


def test_verify_reports_every_table_whose_row_count_differs(backup_dir, people):
    backup = backup_create()
    recorded = backup.row_counts
    backup.row_counts = {**recorded, "auth_group": recorded["auth_group"] + 1, "accounts_user": 0}
    backup.save()

    verified = backup_verify(backup=backup)

    assert verified.status == BackupStatus.VERIFY_FAILED
    assert verified.verification["reason"] == "row_counts"
    assert verified.verification["message"] == (
        "row counts differ in 2 tables: "
        f"accounts_user: 0 rows recorded, {count(recorded['accounts_user'], 'row')} restored; "
        f"auth_group: {count(recorded['auth_group'] + 1, 'row')} recorded, "
        f"{count(recorded['auth_group'], 'row')} restored"
    )


def test_restore_of_a_backup_that_failed_verification_is_refused(backup_dir, people, admin_user):
    backup = backup_create()
    _truncate(_stored_file(backup_dir, backup))
    backup_verify(backup=backup)

    with pytest.raises(BackupError, match="is verify_failed: only completed or verified backups can be restored"):
        backup_restore(backup=backup, actor=admin_user)


def test_decrypted_dump_is_a_custom_format_dump_pg_restore_lists(backup_dir, people, admin_user, tmp_path):
    backup = backup_create()
    output = tmp_path / "plain.dump"

    assert backup_decrypt(backup=backup, output=output, actor=admin_user) == output

    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    listing = subprocess.run(["pg_restore", "--list", str(output)], capture_output=True, text=True, check=False)
    assert listing.returncode == 0, listing.stderr
    assert "TABLE DATA public accounts_user" in listing.stdout
    assert AuditEvent.objects.filter(action="backup.decrypted", actor=admin_user).exists()
    with pytest.raises(BackupError, match="already exists"):
        backup_decrypt(backup=backup, output=output, actor=admin_user)


def test_decrypt_with_the_wrong_key_is_refused_and_writes_nothing(backup_dir, people, settings, tmp_path):
    backup = backup_create()
    settings.BACKUP_ENCRYPTION_KEY = generate_key()
    output = tmp_path / "plain.dump"

    with pytest.raises(BackupError, match="cannot be decrypted: wrong key"):
        backup_decrypt(backup=backup, output=output, actor=None)
    assert not output.exists()


def test_restore_command_without_yes_says_what_it_would_do_and_refuses(backup_dir, people):
    backup = backup_create()
    marker = Group.objects.create(name="created after the backup")
    out = StringIO()

    with pytest.raises(CommandError, match="Nothing was restored: add --yes to restore"):
        call_command("backup", "restore", str(backup.pk), stdout=out)

    assert "take a safety backup" in out.getvalue()
    assert "every change made since the backup is lost" in out.getvalue()
    assert Group.objects.filter(pk=marker.pk).exists()
    assert Backup.objects.count() == 1


def test_backup_command_creates_lists_and_verifies(backup_dir, people):
    out = StringIO()
    call_command("backup", "create", stdout=out)
    backup = Backup.objects.get()
    assert f"Backup #{backup.pk} completed" in out.getvalue()

    call_command("backup", "verify", str(backup.pk), stdout=out)
    assert f"Backup #{backup.pk} verified" in out.getvalue()

    listing = StringIO()
    call_command("backup", "list", stdout=listing)
    row = listing.getvalue().splitlines()[1].split()
    assert row[0] == str(backup.pk)
    assert row[3] == "verified"


def test_backup_command_errors_are_one_clear_line(backup_dir, people, settings):
    with pytest.raises(CommandError, match=r"There is no backup #999999; `manage.py backup list`"):
        call_command("backup", "verify", "999999")

    backup = backup_create()
    _truncate(_stored_file(backup_dir, backup))
    with pytest.raises(CommandError, match=rf"Backup #{backup.pk} failed verification \(truncated\): truncated: "):
        call_command("backup", "verify", str(backup.pk))

    settings.BACKUP_ENCRYPTION_KEY = None
    with pytest.raises(CommandError, match="No backup key configured: set BACKUP_ENCRYPTION_KEY"):
        call_command("backup", "create")


# --- Embedded SQLite, through the command in a child process


def _sqlite_fingerprints(database: Path) -> dict[str, str]:
    with sqlite3.connect(database) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {
            table: hashlib.md5(  # noqa: S324 - a fingerprint, not security
                repr(sorted(db.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)).encode()  # noqa: S608
            ).hexdigest()
            for table in tables
            if table not in REWRITTEN_BY_RESTORE and not table.startswith("sqlite_")
        }


@pytest.mark.slow
def test_embedded_sqlite_backup_create_verify_restore(tmp_path):
    database = tmp_path / "portal.sqlite3"
    environment = clean_environment(
        OPSDECK_DATA_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{database}", BACKUP_DIR=str(tmp_path / "backups")
    )

    def run(*args: str) -> subprocess.CompletedProcess:
        return manage("backup", *args, environment=environment)

    assert manage("migrate", "--noinput", environment=environment).returncode == 0
    with sqlite3.connect(database) as db:
        db.execute("INSERT INTO auth_group (name) VALUES ('kept')")
    before = _sqlite_fingerprints(database)

    created = run("create")
    assert created.returncode == 0, created.stderr
    assert "Backup #1 completed" in created.stdout
    verified = run("verify", "1")
    assert verified.returncode == 0, verified.stderr
    assert "Backup #1 verified" in verified.stdout
    with sqlite3.connect(database) as db:
        (row_counts,) = db.execute("SELECT row_counts FROM backups_backup WHERE id = 1").fetchone()
        assert json.loads(row_counts)["auth_group"] == 1
        assert len(json.loads(row_counts)) > 20

        db.execute("DELETE FROM auth_group")
        db.execute("INSERT INTO auth_group (name) VALUES ('added after the backup')")
    changed = _sqlite_fingerprints(database)
    assert changed != before

    refused = run("restore", "1")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == ["CommandError: Nothing was restored: add --yes to restore."]
    assert _sqlite_fingerprints(database) == changed

    restored = run("restore", "1", "--yes")
    assert restored.returncode == 0, restored.stderr
    assert "safety backup #2" in restored.stdout
    assert _sqlite_fingerprints(database) == before
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        statuses = db.execute('SELECT id, status, "trigger" FROM backups_backup ORDER BY id').fetchall()
        assert statuses == [(1, "verified", "user"), (2, "completed", "safety")]
        (action, changes) = db.execute("SELECT action, changes_text FROM audit_auditevent ORDER BY id DESC").fetchone()
        assert action == "backup.restored"
        assert json.loads(changes)["safety_backup_id"] == 2

    undone = run("restore", "2", "--yes")
    assert undone.returncode == 0, undone.stderr
    assert _sqlite_fingerprints(database) == changed
