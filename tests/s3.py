"""A real S3 HTTP server on localhost (moto's server mode) and storages on it, configured as the settings do."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3

from project.settings.env import Environment
from project.settings.storage import file_storage

from .helpers import free_port

CREDENTIALS = {
    "aws_access_key_id": "AKIATESTMEDIAKEY0001",
    "aws_secret_access_key": "opsdeck-secret",
    "region_name": "us-east-1",
}


@contextmanager
def s3_server(*, unchecked_requests: int | None = None) -> Iterator[str]:
    """Start moto's S3 server on a free port; its endpoint URL, until the block ends.

    With ``unchecked_requests``, the server checks credentials (against its IAM users) from the request after
    that many on: the first ones set up buckets and users.
    """
    port = free_port()
    environment = dict(os.environ)
    if unchecked_requests is not None:
        environment["INITIAL_NO_AUTH_ACTION_COUNT"] = str(unchecked_requests)
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=environment,
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


def s3_storage_settings(
    prefix: str, *, endpoint: str, bucket: str, key_prefix: str, access_key: tuple[str, str] | None = None
) -> dict:
    """The STORAGES entry the settings build from ``<prefix>_S3_*`` variables naming ``bucket`` on ``endpoint``,
    with ``access_key`` (id, secret) or the test server's usual one."""
    key_id, secret = access_key or (CREDENTIALS["aws_access_key_id"], CREDENTIALS["aws_secret_access_key"])
    environment = Environment(
        {
            f"{prefix}_S3_BUCKET": bucket,
            f"{prefix}_S3_PREFIX": key_prefix,
            f"{prefix}_S3_ENDPOINT_URL": endpoint,
            f"{prefix}_S3_REGION": CREDENTIALS["region_name"],
            f"{prefix}_S3_ACCESS_KEY_ID": key_id,
            f"{prefix}_S3_SECRET_ACCESS_KEY": secret,
        }
    )
    return file_storage(environment, prefix, folder=None)


def object_keys(client, bucket: str) -> list[str]:
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def iam_client(endpoint: str):
    return boto3.client("iam", endpoint_url=endpoint, **CREDENTIALS)


# What users are told when the media bucket cannot be used, by the way it fails.
REFUSED = "the S3 service refused access (HTTP 403: a wrong access key, or no permission on the bucket)"
UNREACHABLE = "the S3 service cannot be reached"


@dataclass
class UnusableMedia:
    """A media bucket that cannot be used; ``use()`` switches the portal's media to it."""

    settings: object
    storage: dict
    reason: str
    secrets: tuple[str, ...]

    @property
    def message(self) -> str:
        return f"File storage is unavailable: {self.reason}; try again later."

    def use(self) -> None:
        self.settings.STORAGES = {**self.settings.STORAGES, "default": self.storage}

    def assert_not_shown(self, *texts: str) -> None:
        """No key (id or secret) in what users or the logs see."""
        for secret in self.secrets:
            for text in texts:
                assert secret not in text
