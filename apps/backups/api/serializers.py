"""Backup API bodies: the list row, the detail with its verification report, the manifest of a download, and
the jobs that create and verify backups."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import Backup, BackupJob
from ..stream import FORMAT_VERSION, MAGIC


class BackupSerializer(serializers.ModelSerializer):
    """A backup as listed: what, when, how big, and whether a restore proved it."""

    triggered_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, help_text="The user who asked for it; null for the schedule."
    )

    class Meta:
        model = Backup
        fields = [
            "id",
            "status",
            "trigger",
            "triggered_by",
            "started_at",
            "finished_at",
            "duration_seconds",
            "size_bytes",
            "compression",
            "database_engine",
            "verified_at",
            "error",
        ]
        read_only_fields = fields


class BackupDetailSerializer(BackupSerializer):
    """A backup with its checksum, key fingerprint, migration state, row counts and last verification report."""

    row_counts = serializers.DictField(child=serializers.IntegerField(), help_text="Rows per table at backup time.")
    migrations = serializers.DictField(child=serializers.CharField(), help_text="Latest applied migration per app.")
    verification = serializers.JSONField(help_text="The report of the last verification; empty before the first.")

    class Meta(BackupSerializer.Meta):
        fields = [
            *BackupSerializer.Meta.fields,
            "plain_bytes",
            "sha256",
            "key_id",
            "storage_name",
            "path",
            "server_version",
            "migrations",
            "row_counts",
            "verification",
        ]
        read_only_fields = fields


@extend_schema_field(serializers.CharField())
class FormatField(serializers.Field):
    def to_representation(self, value) -> str:
        return f"{MAGIC.decode()} v{FORMAT_VERSION}"


class BackupManifestSerializer(serializers.ModelSerializer):
    """What an operator needs to check and restore a downloaded file elsewhere; never the key, only its id."""

    format = FormatField(source="*", help_text="The file format (see apps/backups/stream.py).")
    encryption = serializers.SerializerMethodField()
    file_name = serializers.SerializerMethodField(help_text="The name the download is saved under.")
    size_bytes = serializers.IntegerField(help_text="Size of the encrypted file: compare before trusting it.")
    sha256 = serializers.CharField(help_text="SHA-256 of the encrypted file.")
    key_id = serializers.CharField(help_text="Fingerprint of the key that decrypts it (never the key).")
    row_counts = serializers.DictField(child=serializers.IntegerField())
    migrations = serializers.DictField(child=serializers.CharField())

    class Meta:
        model = Backup
        fields = [
            "id",
            "format",
            "file_name",
            "size_bytes",
            "sha256",
            "key_id",
            "encryption",
            "compression",
            "plain_bytes",
            "database_engine",
            "server_version",
            "started_at",
            "finished_at",
            "migrations",
            "row_counts",
        ]
        read_only_fields = fields

    def get_encryption(self, backup: Backup) -> str:
        return "AES-256-GCM, chunked (STREAM), per-file key derived with HKDF-SHA256"

    def get_file_name(self, backup: Backup) -> str:
        return download_name(backup)


def download_name(backup: Backup) -> str:
    """The stored file's own name, without the storage's folders."""
    return backup.path.rsplit("/", 1)[-1]


class BackupJobSerializer(serializers.ModelSerializer):
    """A job that creates or verifies a backup: its lifecycle here, its result in ``backup``."""

    owner = serializers.SlugRelatedField(
        slug_field="username", read_only=True, help_text="The administrator who asked; null for the schedule."
    )
    backup = BackupSerializer(
        read_only=True,
        allow_null=True,
        help_text="The backup verified, or the one a create job made (null until it has a row). Its status is the "
        "result: completed, failed, verified, verify_failed.",
    )
    bytes_written = serializers.IntegerField(
        source="progress_done", read_only=True, help_text="Bytes of the encrypted file written (create jobs)."
    )

    class Meta:
        model = BackupJob
        fields = [
            "id",
            "operation",
            "status",
            "owner",
            "backup",
            "created_at",
            "queued_at",
            "started_at",
            "finished_at",
            "duration_seconds",
            "attempts",
            "max_attempts",
            "bytes_written",
            "cancellable",
            "error",
        ]
        read_only_fields = fields
