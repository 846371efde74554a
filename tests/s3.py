"""A real S3 HTTP server on localhost (moto's server mode) and storages on it, configured as the settings do."""

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import boto3

from project.settings.env import Environment
from project.settings.storage import file_storage

from .helpers import free_port

CREDENTIALS = {"aws_access_key_id": "opsdeck", "aws_secret_access_key": "opsdeck-secret", "region_name": "us-east-1"}


@contextmanager
def s3_server() -> Iterator[str]:
    """Start moto's S3 server on a free port; its endpoint URL, until the block ends."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(server, port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


def _wait_for_port(server: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the S3 server did not start within 30 s") from None
            time.sleep(0.1)


def s3_client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS)


def s3_storage_settings(prefix: str, *, endpoint: str, bucket: str, key_prefix: str) -> dict:
    """The STORAGES entry the settings build from ``<prefix>_S3_*`` variables naming ``bucket`` on ``endpoint``."""
    environment = Environment(
        {
            f"{prefix}_S3_BUCKET": bucket,
            f"{prefix}_S3_PREFIX": key_prefix,
            f"{prefix}_S3_ENDPOINT_URL": endpoint,
            f"{prefix}_S3_REGION": CREDENTIALS["region_name"],
            f"{prefix}_S3_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
            f"{prefix}_S3_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        }
    )
    return file_storage(environment, prefix, folder=None)


def object_keys(client, bucket: str) -> list[str]:
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", []))
