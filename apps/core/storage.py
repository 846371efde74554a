"""The portal's file storages (STORAGES in project/settings/storage.py): a local folder, or an S3 bucket.

Both keep the promises the apps rely on. A file is either whole under its name or absent: the local folder writes
under a temporary name and links the finished file into place, S3 makes an object visible only once its upload
completed. And a bucket that cannot be used (unreachable, credentials refused, access denied) raises
StorageUnavailable, an error users can be shown (API 503), rather than botocore's exceptions.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from boto3.exceptions import Boto3Error
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as S3ConnectionError
from django.core.files.storage import FileSystemStorage
from s3transfer.exceptions import RetriesExceededError
from storages.backends.s3 import S3File, S3Storage
from storages.utils import clean_name

from apps.core.errors import ApplicationError

logger = logging.getLogger(__name__)

STORAGE_RETRY_AFTER_SECONDS = 30
# Error codes S3 gives for keys it does not accept.
_REFUSED_CREDENTIALS = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired"}
)
_DENIED = frozenset({"AccessDenied", "AllAccessDisabled"})


class StorageUnavailable(ApplicationError, OSError):
    """The file storage could not be used: a service fault, not the request's (503, try again later).

    Still an ``OSError``, so that code reporting failed reads and writes reports this one too.
    """

    status = 503
    code = "unavailable"
    retry_after_seconds = STORAGE_RETRY_AFTER_SECONDS

    def __init__(self, reason: str):
        super().__init__(f"File storage is unavailable: {reason}; try again later.")


def _reason(error: Exception) -> str:
    """What went wrong, short and fit to show: error codes and kinds only, never the endpoint (its URL may hold
    credentials), keys or S3's own message."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = str(details.get("Code", "")) or "unknown"
        if code in _REFUSED_CREDENTIALS:
            return f"the S3 service refused the access key ({code})"
        if code in _DENIED:
            return f"the S3 service denied access to the bucket ({code})"
        if code == "403":  # the answer to a HEAD request, which has no body to say more
            return "the S3 service refused access (HTTP 403: a wrong access key, or no permission on the bucket)"
        if code == "NoSuchBucket":
            return "the bucket does not exist (NoSuchBucket)"
        return f"the S3 service answered with an error ({code})"
    if isinstance(error, S3ConnectionError | HTTPClientError | RetriesExceededError):
        return "the S3 service cannot be reached"
    if isinstance(error, NoCredentialsError):
        return "no S3 credentials are configured"
    return f"the S3 client failed ({type(error).__name__})"


@contextmanager
def s3_errors(operation: str) -> Iterator[None]:
    """Turn what boto raises inside into StorageUnavailable; a missing object (404) stays django-storages' affair."""
    try:
        yield
    except ClientError as error:
        if (
            error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404
            and error.response.get("Error", {}).get("Code") != "NoSuchBucket"
        ):
            raise
        raise _unavailable(operation, error) from None
    except (BotoCoreError, Boto3Error, RetriesExceededError) as error:
        raise _unavailable(operation, error) from None


def _unavailable(operation: str, error: Exception) -> StorageUnavailable:
    reason = _reason(error)
    logger.warning("File storage: %s failed: %s", operation, reason)
    return StorageUnavailable(reason)


class CheckedS3File(S3File):
    """django-storages' file, its reads and writes (which talk to S3 lazily) raising StorageUnavailable."""

    def _get_file(self):
        with s3_errors("reading a file"):
            return super()._get_file()

    file = property(_get_file, S3File._set_file)

    def write(self, content):
        with s3_errors("writing a file"):
            return super().write(content)

    def close(self):
        with s3_errors("writing a file"):
            super().close()


class CheckedS3Storage(S3Storage):
    """django-storages' S3 storage raising StorageUnavailable when the bucket cannot be used."""

    def _open(self, name, mode="rb"):
        name = self._normalize_name(clean_name(name))
        with s3_errors("opening a file"):
            try:
                return CheckedS3File(name, mode, self)
            except ClientError as error:
                if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                    raise FileNotFoundError(f"File does not exist: {name}") from None
                raise

    def _save(self, name, content):
        with s3_errors("storing a file"):
            return super()._save(name, content)

    def delete(self, name):
        with s3_errors("deleting a file"):
            super().delete(name)

    def exists(self, name):
        with s3_errors("looking for a file"):
            return super().exists(name)

    def size(self, name):
        with s3_errors("reading a file's size"):
            return super().size(name)

    def listdir(self, name):
        with s3_errors("listing files"):
            return super().listdir(name)

    def get_modified_time(self, name):
        with s3_errors("reading a file's time"):
            return super().get_modified_time(name)


class WholeFileSystemStorage(FileSystemStorage):
    """A local folder (or one network file system every host mounts) where a file appears complete or not at all.

    Django writes a file under its final name as it goes: another process (or host) could read half of it, and a
    write that fails midway would leave that half behind. Here the file is written under a temporary name in the
    same folder and hard-linked to its name once complete, which also never replaces a file already there.
    """

    def _save(self, name, content):
        directory, base = os.path.split(name)
        temporary = os.path.join(directory, f".partial-{uuid.uuid4().hex}-{base}")
        try:
            temporary = super()._save(temporary, content)
        except BaseException:
            self.delete(temporary)
            raise
        try:
            while True:
                try:
                    os.link(self.path(temporary), self.path(name))
                    return name
                except FileExistsError:  # taken since Storage.save chose the name
                    name = self.get_available_name(name)
        finally:
            self.delete(temporary)
