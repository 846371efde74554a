"""File storages: a local folder, or an S3-compatible bucket (django-storages) configured by ``<PREFIX>_S3_*``.

Media (``MEDIA_S3_*``: reports, registry artifacts, inference inputs and results) and backups (``BACKUP_S3_*``) are
configured alike, each with its own bucket or key prefix (README, "Several hosts").
"""

import re
from urllib.parse import urlsplit

from botocore.config import Config
from django.core.exceptions import ImproperlyConfigured

from .env import Environment

# django-storages' and Django's backends, adapted (apps/core/storage.py): a file is whole under its name or absent,
# and a bucket that cannot be used is an error users are shown.
S3_BACKEND = "apps.core.storage.CheckedS3Storage"
LOCAL_BACKEND = "apps.core.storage.WholeFileSystemStorage"
# S3's rules for bucket names: 3 to 63 lowercase letters, digits, dots and hyphens, a letter or digit at each end.
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# A file read from the bucket is spooled to a temporary file past this size rather than held in memory
# (django-storages keeps it all in memory by default, and backups and reports can be gigabytes).
S3_MAX_MEMORY_BYTES = 16 * 2**20
# An unreachable service is reported within seconds (botocore waits a minute per connection attempt and makes
# five); a bucket that answers slowly is still waited for.
S3_CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=60, retries={"mode": "standard", "total_max_attempts": 3})
# The key prefixes of the two storages when <PREFIX>_S3_PREFIX is unset (docker-compose.yml repeats them).
DEFAULT_KEY_PREFIXES = {"MEDIA": "opsdeck-media", "BACKUP": "opsdeck-backups"}


def file_storage(env: Environment, prefix: str, *, folder: str | None) -> dict:
    """The STORAGES entry of ``prefix`` (MEDIA or BACKUP): the bucket ``<prefix>_S3_BUCKET`` when set, else the
    local ``folder`` (None: MEDIA_ROOT, followed when a test changes it)."""
    bucket = env.str(f"{prefix}_S3_BUCKET", "")
    if not bucket:
        local = {"BACKEND": LOCAL_BACKEND}
        return local | {"OPTIONS": {"location": folder}} if folder else local
    if not _BUCKET_NAME.match(bucket) or ".." in bucket:
        raise ImproperlyConfigured(
            f"{prefix}_S3_BUCKET must be an S3 bucket name (3 to 63 lowercase letters, digits, dots and hyphens, "
            f"a letter or digit at each end), got {bucket!r}."
        )
    key_prefix = env.str(f"{prefix}_S3_PREFIX", DEFAULT_KEY_PREFIXES[prefix]).strip("/")
    access_key = env.str(f"{prefix}_S3_ACCESS_KEY_ID", "")
    secret_key = env.str(f"{prefix}_S3_SECRET_ACCESS_KEY", "")
    if bool(access_key) != bool(secret_key):
        raise ImproperlyConfigured(
            f"Set both {prefix}_S3_ACCESS_KEY_ID and {prefix}_S3_SECRET_ACCESS_KEY, or neither "
            "(then the usual AWS credential chain applies)."
        )
    return {
        "BACKEND": S3_BACKEND,
        "OPTIONS": {
            "bucket_name": bucket,
            "location": key_prefix,
            "endpoint_url": _endpoint_url(env, f"{prefix}_S3_ENDPOINT_URL"),
            "region_name": env.str(f"{prefix}_S3_REGION", "") or None,
            "access_key": access_key or None,
            "secret_key": secret_key or None,
            # Never replace an object: a name already taken gets a suffix, as in a local folder.
            "file_overwrite": False,
            "max_memory_size": S3_MAX_MEMORY_BYTES,
            "client_config": S3_CLIENT_CONFIG,
        },
    }


def _endpoint_url(env: Environment, name: str) -> str | None:
    url = env.str(name, "")
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # The URL is not echoed: it may carry credentials.
        raise ImproperlyConfigured(
            f"{name} must be the http:// or https:// URL of the S3 service, e.g. http://minio:9000."
        )
    return url


def storages_apart(first: tuple[str, dict], second: tuple[str, dict]) -> None:
    """Refuse two S3 storages (named by their variable prefix) whose keys would mix in one bucket."""
    (first_name, first_storage), (second_name, second_storage) = first, second
    if first_storage["BACKEND"] != S3_BACKEND or second_storage["BACKEND"] != S3_BACKEND:
        return
    first_options, second_options = first_storage["OPTIONS"], second_storage["OPTIONS"]
    if first_options["bucket_name"] != second_options["bucket_name"]:
        return
    first_keys, second_keys = _key_folder(first_options["location"]), _key_folder(second_options["location"])
    if first_keys.startswith(second_keys) or second_keys.startswith(first_keys):
        raise ImproperlyConfigured(
            f"{first_name}_S3_PREFIX ({first_options['location']!r}) and {second_name}_S3_PREFIX "
            f"({second_options['location']!r}) must be separate key prefixes, neither within the other, when "
            f"{first_name}_S3_BUCKET and {second_name}_S3_BUCKET name the same bucket."
        )


def _key_folder(location: str) -> str:
    return f"{location}/" if location else ""
