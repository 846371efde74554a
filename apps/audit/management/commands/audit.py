from datetime import UTC, datetime
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.audit.partitions import PartitionError, partitioned, partitions_ensure, partitions_list
from apps.audit.services import AuditError, archive_create, chain_check, checkpoint_record
from apps.audit.verification import archive_verify
from apps.core.datetimes import validate_storable_datetime


def _date(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--before must be a date like 2019-01-31 (or an ISO timestamp), got {value!r}.") from None
    try:
        validate_storable_datetime(parsed)
    except ValidationError as exc:
        raise CommandError(f"--before {value!r}: {exc.messages[0]}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Verify, checkpoint and archive the hash-chained audit trail."

    def add_arguments(self, parser) -> None:
        commands = parser.add_subparsers(dest="subcommand", required=True)
        verify = commands.add_parser("verify", help="Recompute the chain and check the signed checkpoints.")
        verify.add_argument("--from", dest="from_id", type=int, help="Start at this event id.")
        verify.add_argument("--archive", type=Path, help="Verify an archive file instead of the database.")
        commands.add_parser("checkpoint", help="Sign the chain's current head now.")
        archive = commands.add_parser("archive", help="Move events older than a date to a gzip JSONL file.")
        archive.add_argument("--before", required=True, type=_date, help="UTC date or timestamp.")
        archive.add_argument("--output", required=True, type=Path, help="New file to write (.jsonl.gz).")
        commands.add_parser(
            "partitions", help="Create the coming months' partitions (PostgreSQL), then list them with their events."
        )

    def handle(self, *args, subcommand: str, **options) -> None:
        if subcommand == "verify":
            self._verify(options["from_id"], options["archive"])
        elif subcommand == "checkpoint":
            self.stdout.write(checkpoint_record())
        elif subcommand == "partitions":
            self._partitions()
        else:
            self._archive(options["before"], options["output"])

    def _verify(self, from_id: int | None, archive: Path | None) -> None:
        if archive is not None and not archive.is_file():
            raise CommandError(f"No archive file at {archive}.")
        report = archive_verify(archive) if archive is not None else chain_check(from_id=from_id)
        for warning in report.warnings:
            self.stderr.write(self.style.WARNING(f"Warning: {warning}"))
        if not report.ok:
            raise CommandError(report.summary())
        self.stdout.write(self.style.SUCCESS(report.summary()))

    def _archive(self, before: datetime, output: Path) -> None:
        try:
            archive = archive_create(before=before, output=output)
        except AuditError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Archived {archive.event_count} events (#{archive.first_id}-#{archive.last_id}) to {output}; "
            f"the chain now continues from {archive.anchor_hash}."
        )

    def _partitions(self) -> None:
        if not partitioned():
            self.stdout.write("The audit table is not partitioned here (SQLite or before migration 0013).")
            return
        problem = None
        try:
            self.stdout.write(partitions_ensure())
        except PartitionError as exc:
            problem = str(exc)
        for partition in partitions_list(count=True):
            month = f"{partition.month:%Y-%m}" if partition.month else "default"
            self.stdout.write(f"{month:<8} {partition.name:<32} {partition.events:>12} events")
        if problem:
            raise CommandError(problem)
