"""Backups in an S3-compatible bucket (a real S3 HTTP server on localhost: moto's server mode)."""

import socket
import subprocess
import sys
import time

import pytest

from apps.backups.choices import BackupStatus
from apps.backups.restore import backup_verify
from apps.backups.services import backup_create
from tests.helpers import free_port

BUCKET = "opsdeck-backups-test"
CREDENTIALS = {"aws_access_key_id": "opsdeck", "aws_secret_access_key": "opsdeck-secret", "region_name": "us-east-1"}


@pytest.fixture
def s3_endpoint():
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("the S3 server did not start")
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(10)


@pytest.fixture
def s3_bucket(s3_endpoint, settings):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint, **CREDENTIALS)
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "location": "opsdeck-backups",
                "endpoint_url": s3_endpoint,
                "access_key": CREDENTIALS["aws_access_key_id"],
                "secret_key": CREDENTIALS["aws_secret_access_key"],
                "region_name": CREDENTIALS["region_name"],
                "file_overwrite": False,
            },
        },
    }
    return client


def test_backup_is_written_to_the_bucket_and_verifies_from_it(s3_bucket, transactional_db, admin_user):
    backup = backup_create(actor=admin_user)

    stored = s3_bucket.head_object(Bucket=BUCKET, Key=f"opsdeck-backups/{backup.path}")
    assert stored["ContentLength"] == backup.size_bytes

    backup = backup_verify(backup=backup)
    assert backup.status == BackupStatus.VERIFIED, backup.verification
