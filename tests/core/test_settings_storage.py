"""Media and backup storages: a local folder, or an S3-compatible bucket configured by <PREFIX>_S3_* variables,
validated with the variable named."""

import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from project.settings.env import Environment
from project.settings.storage import LOCAL_BACKEND, S3_BACKEND, file_storage, storages_apart
from tests.helpers import clean_environment, manage

BUCKET = {"MEDIA_S3_BUCKET": "opsdeck-files"}


def _media(variables: dict[str, str]) -> dict:
    return file_storage(Environment(variables), "MEDIA", folder=None)


def test_without_a_bucket_files_stay_in_the_local_folder():
    assert _media({}) == {"BACKEND": LOCAL_BACKEND}
    backups = file_storage(Environment({}), "BACKUP", folder="/srv/backups")
    assert backups["OPTIONS"] == {"location": "/srv/backups"}


def test_a_bucket_gives_the_s3_storage_with_its_options_and_the_secret_from_a_file(tmp_path):
    secret_file = tmp_path / "s3_secret"
    secret_file.write_text("very-secret\n")
    storage = _media(
        {
            **BUCKET,
            "MEDIA_S3_PREFIX": "/portal/media/",
            "MEDIA_S3_ENDPOINT_URL": "https://minio.internal:9000",
            "MEDIA_S3_REGION": "eu-west-1",
            "MEDIA_S3_ACCESS_KEY_ID": "opsdeck",
            "MEDIA_S3_SECRET_ACCESS_KEY_FILE": str(secret_file),
        }
    )
    assert storage["BACKEND"] == S3_BACKEND
    options = storage["OPTIONS"]
    assert (options["bucket_name"], options["location"], options["endpoint_url"], options["region_name"]) == (
        "opsdeck-files",
        "portal/media",
        "https://minio.internal:9000",
        "eu-west-1",
    )
    assert (options["access_key"], options["secret_key"], options["file_overwrite"]) == (
        "opsdeck",
        "very-secret",
        False,
    )
    assert options["max_memory_size"] > 0  # large files spool to disk instead of memory


def test_a_bucket_alone_uses_the_default_prefix_and_the_aws_credential_chain():
    options = _media(BUCKET)["OPTIONS"]
    assert (options["location"], options["endpoint_url"], options["access_key"], options["secret_key"]) == (
        "opsdeck-media",
        None,
        None,
        None,
    )


@pytest.mark.parametrize("bucket", ["Opsdeck", "ab", "bucket_with_underscores", "-leading", "two..dots", "x" * 64])
def test_a_bucket_name_s3_would_refuse_is_refused_naming_the_variable(bucket):
    with pytest.raises(ImproperlyConfigured, match="MEDIA_S3_BUCKET must be an S3 bucket name"):
        _media({"MEDIA_S3_BUCKET": bucket})


@pytest.mark.parametrize("url", ["storage.internal:9000", "ftp://storage", "https://", "ftp://ops:hunter2@storage"])
def test_an_endpoint_that_is_not_an_http_url_is_refused_without_echoing_it(url):
    with pytest.raises(
        ImproperlyConfigured, match="MEDIA_S3_ENDPOINT_URL must be the http:// or https:// URL"
    ) as error:
        _media({**BUCKET, "MEDIA_S3_ENDPOINT_URL": url})
    assert "storage" not in str(error.value)


@pytest.mark.parametrize("given", ["MEDIA_S3_ACCESS_KEY_ID", "MEDIA_S3_SECRET_ACCESS_KEY"])
def test_one_key_without_the_other_is_refused(given):
    with pytest.raises(ImproperlyConfigured, match="Set both MEDIA_S3_ACCESS_KEY_ID and MEDIA_S3_SECRET_ACCESS_KEY"):
        _media({**BUCKET, given: "value"})


def _backups(variables: dict[str, str]) -> dict:
    return file_storage(Environment(variables), "BACKUP", folder="/srv/backups")


def test_media_and_backups_share_a_bucket_only_under_separate_prefixes():
    media = _media(BUCKET)
    storages_apart(("MEDIA", media), ("BACKUP", _backups({"BACKUP_S3_BUCKET": "opsdeck-files"})))
    storages_apart(
        ("MEDIA", media),
        ("BACKUP", _backups({"BACKUP_S3_BUCKET": "other-bucket", "BACKUP_S3_PREFIX": "opsdeck-media"})),
    )
    storages_apart(("MEDIA", media), ("BACKUP", _backups({})))
    for prefix in ("opsdeck-media", "opsdeck-media/backups", ""):
        backups = _backups({"BACKUP_S3_BUCKET": "opsdeck-files", "BACKUP_S3_PREFIX": prefix})
        with pytest.raises(ImproperlyConfigured, match=r"MEDIA_S3_PREFIX .* and BACKUP_S3_PREFIX .* must be separate"):
            storages_apart(("MEDIA", media), ("BACKUP", backups))


DEFAULT_STORAGE = """
import json
from django.core.files.storage import storages
media = storages["default"]
print(json.dumps({
    "media": type(media).__name__,
    "bucket": media.bucket_name,
    "location": media.location,
    "backups": type(storages["backups"]).__name__,
}))
"""


def test_the_portal_stores_media_in_the_bucket_the_variables_name(tmp_path):
    environment = clean_environment(
        OPSDECK_DATA_DIR=str(tmp_path), MEDIA_S3_BUCKET="opsdeck-files", MEDIA_S3_PREFIX="media"
    )
    result = manage("shell", "--verbosity", "0", "-c", DEFAULT_STORAGE, environment=environment)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "media": "CheckedS3Storage",
        "bucket": "opsdeck-files",
        "location": "media",
        "backups": "WholeFileSystemStorage",
    }


def test_a_bad_media_bucket_stops_the_portal_with_the_variable_named(tmp_path):
    environment = clean_environment(OPSDECK_DATA_DIR=str(tmp_path), MEDIA_S3_BUCKET="Not A Bucket")
    result = manage("check", environment=environment)
    assert result.returncode != 0
    assert "MEDIA_S3_BUCKET must be an S3 bucket name" in result.stderr
