"""Backups in an S3-compatible bucket (a real S3 HTTP server on localhost: moto's server mode)."""

import pytest

from apps.backups.choices import BackupStatus
from apps.backups.restore import backup_verify
from apps.backups.services import backup_create
from tests.s3 import s3_client, s3_storage_settings

BUCKET = "opsdeck-backups-test"
KEY_PREFIX = "opsdeck-backups"


@pytest.fixture
def s3_bucket(s3_endpoint, settings):
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": s3_storage_settings("BACKUP", endpoint=s3_endpoint, bucket=BUCKET, key_prefix=KEY_PREFIX),
    }
    return client


def test_backup_is_written_to_the_bucket_and_verifies_from_it(s3_bucket, transactional_db, admin_user):
    backup = backup_create(actor=admin_user)

    stored = s3_bucket.head_object(Bucket=BUCKET, Key=f"{KEY_PREFIX}/{backup.path}")
    assert stored["ContentLength"] == backup.size_bytes

    backup = backup_verify(backup=backup)
    assert backup.status == BackupStatus.VERIFIED, backup.verification
