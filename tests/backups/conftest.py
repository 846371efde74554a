"""What the backup tests share: a real stored backup (in the backup_dir of tests/conftest.py), records without files."""

import pytest

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
def stored_backup(transactional_db, backup_dir, admin_user) -> Backup:
    """A real backup of the test database: pg_dump, compressed and encrypted into the test's folder."""
    return backup_create(trigger=BackupTrigger.USER, actor=admin_user)
