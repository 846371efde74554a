"""What the backup tests share: a backup storage of the test's own, a real stored backup, records without files."""

import pytest
from django.core.files.storage import storages

from apps.backups.choices import BackupStatus, BackupTrigger
from apps.backups.models import Backup
from apps.backups.services import backup_create


def backup_row(status=BackupStatus.COMPLETED, trigger=BackupTrigger.SCHEDULE, **fields) -> Backup:
    """A backup record without a file, for tests about listing and access rather than contents."""
    values = {
        "compression": "zstd",
        "key_id": "0123456789abcdef",
        "storage_name": "backups",
        "path": "opsdeck-test.backup",
        "database_engine": "postgresql",
        "sha256": "ab" * 32,
        "size_bytes": 1234,
        "row_counts": {"accounts_user": 3},
        "migrations": {"backups": "0001_initial"},
    }
    return Backup.objects.create(status=status, trigger=trigger, **(values | fields))


@pytest.fixture
def backup_dir(tmp_path, settings):
    """The backup storage in a folder of this test; the storages handler caches backends, so drop its copy."""
    location = tmp_path / "backups"
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(location)}},
    }
    storages._storages.pop("backups", None)
    yield location
    storages._storages.pop("backups", None)


@pytest.fixture
def stored_backup(transactional_db, backup_dir, admin_user) -> Backup:
    """A real backup of the test database: pg_dump, compressed and encrypted into the test's folder."""
    return backup_create(trigger=BackupTrigger.USER, actor=admin_user)
