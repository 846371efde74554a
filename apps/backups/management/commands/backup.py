from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.backups.choices import BackupStatus, BackupTrigger
from apps.backups.keys import BackupKeyError, generate_key
from apps.backups.models import Backup
from apps.backups.restore import backup_decrypt, backup_restore, backup_verify
from apps.backups.services import BackupError, backup_create
from apps.core import formatting

LIST_LIMIT = 20


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    amount = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TB"


def _time(moment) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M:%S}" if moment else "-"


def _backup(backup_id: int) -> Backup:
    backup = Backup.objects.filter(pk=backup_id).first()
    if backup is None:
        raise CommandError(f"There is no backup #{backup_id}; `manage.py backup list` shows the backups.")
    return backup


class Command(BaseCommand):
    help = (
        "Create, list, verify, restore, decrypt and prune the encrypted database backups. Runs here, synchronously "
        "(no job, no worker): the command returns when the work is done."
    )

    def add_arguments(self, parser) -> None:
        commands = parser.add_subparsers(dest="subcommand", required=True)
        commands.add_parser("create", help="Back up the database now (synchronously, in this process).")
        listing = commands.add_parser("list", help="The newest backups.")
        listing.add_argument("--limit", type=int, default=LIST_LIMIT, help=f"How many (default {LIST_LIMIT}).")
        verify = commands.add_parser(
            "verify", help="Check a backup by restoring it into a scratch database (synchronously)."
        )
        verify.add_argument("backup_id", type=int)
        restore = commands.add_parser("restore", help="Replace the database with a backup (takes a safety backup).")
        restore.add_argument("backup_id", type=int)
        restore.add_argument("--yes", action="store_true", help="Confirm: without it nothing is restored.")
        decrypt = commands.add_parser("decrypt", help="Write a backup's plain dump (pg_restore reads it).")
        decrypt.add_argument("backup_id", type=int)
        decrypt.add_argument("--output", required=True, type=Path, help="New file to write.")
        prune = commands.add_parser("prune", help="Apply the retention policy (BACKUP_KEEP_*).")
        prune.add_argument("--dry-run", action="store_true", help="Show what would be pruned and why; change nothing.")
        commands.add_parser("genkey", help="Print a new random BACKUP_ENCRYPTION_KEY.")

    def handle(self, *args, subcommand: str, **options) -> None:
        try:
            if subcommand == "create":
                self._create()
            elif subcommand == "list":
                self._list(options["limit"])
            elif subcommand == "verify":
                self._verify(_backup(options["backup_id"]))
            elif subcommand == "restore":
                self._restore(_backup(options["backup_id"]), confirmed=options["yes"])
            elif subcommand == "decrypt":
                self._decrypt(_backup(options["backup_id"]), options["output"])
            elif subcommand == "prune":
                # Imported here: only this subcommand needs the retention rules.
                from apps.backups.retention import backups_prune

                self.stdout.write(backups_prune(dry_run=options["dry_run"]))
            else:
                self.stdout.write(generate_key())
        except (BackupError, BackupKeyError) as exc:
            raise CommandError(str(exc)) from None

    def _create(self) -> None:
        backup = backup_create(trigger=BackupTrigger.USER)
        self.stdout.write(
            self.style.SUCCESS(
                f"Backup #{backup.pk} completed: {_size(backup.size_bytes)} in {backup.duration_seconds} s "
                f"({backup.path}, key {backup.key_id})."
            )
        )

    def _list(self, limit: int) -> None:
        backups = Backup.objects.order_by("-started_at", "-id")[: max(limit, 1)]
        self.stdout.write(f"{'ID':>6}  {'STARTED':19}  {'STATUS':13}  {'SIZE':>9}  {'VERIFIED':19}  TRIGGER")
        for backup in backups:
            verified = _time(backup.verified_at) if backup.status == BackupStatus.VERIFIED else "-"
            self.stdout.write(
                f"{backup.pk:>6}  {_time(backup.started_at):19}  {backup.status:13}  {_size(backup.size_bytes):>9}  "
                f"{verified:19}  {backup.trigger}"
            )
        if not backups:
            self.stdout.write("No backups yet: `manage.py backup create` makes one.")

    def _verify(self, backup: Backup) -> None:
        backup = backup_verify(backup=backup)
        report = backup.verification
        if not report["ok"]:
            raise CommandError(f"Backup #{backup.pk} failed verification ({report['reason']}): {report['message']}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Backup #{backup.pk} verified: restored, {report['tables_compared']} tables with the recorded row "
                f"counts ({report['duration_seconds']} s)."
            )
        )

    def _restore(self, backup: Backup, *, confirmed: bool) -> None:
        if not confirmed:
            self.stdout.write(
                f"Restoring {backup} ({backup.status}, {_size(backup.size_bytes)}) would:\n"
                f"  1. take a safety backup of the database as it is now;\n"
                f"  2. replace every table of the {connection.vendor} database {connection.settings_dict['NAME']!r} "
                "with the backup's contents: every change made since the backup is lost;\n"
                "  3. record the restore in the audit trail."
            )
            raise CommandError("Nothing was restored: add --yes to restore.")
        safety = backup_restore(backup=backup, actor=None)
        self.stdout.write(
            self.style.SUCCESS(
                f"Restored {backup}. The database as it was before is in safety backup #{safety.pk}: "
                f"`manage.py backup restore {safety.pk} --yes` undoes this restore."
            )
        )
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if pending:
            self.stdout.write(
                self.style.WARNING(
                    f"The restored database predates {formatting.count(len(pending), 'migration')} of this code: "
                    "run `manage.py migrate`."
                )
            )

    def _decrypt(self, backup: Backup, output: Path) -> None:
        path = backup_decrypt(backup=backup, output=output, actor=None)
        kind = "custom-format dump (pg_restore reads it)" if backup.database_engine == "postgresql" else "database"
        self.stdout.write(
            f"Wrote the plain {kind} of {backup} to {path} (mode 0600). It is NOT encrypted: delete it when done."
        )
