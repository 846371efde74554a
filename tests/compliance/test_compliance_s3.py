"""Compliance reports with media in an S3 bucket (a real S3 HTTP server on localhost: moto's server mode)."""

import hashlib
import json

import pytest

from apps.compliance.choices import ReportFormat, ReportKind
from tests.compliance.test_compliance_api import _body, _detail_url, _download, _generated
from tests.conftest import MEDIA_BUCKET, MEDIA_KEY_PREFIX
from tests.s3 import object_keys


@pytest.mark.django_db
def test_report_is_generated_into_the_bucket_and_downloaded_from_it(
    api_client, compliance_user, media_bucket, settings
):
    report = _generated(api_client, compliance_user, _body(kind=ReportKind.ACCESS_REVIEW, fmt=ReportFormat.PDF))

    content = _download(api_client, report)
    manifest = api_client.get(_detail_url(report.pk, "manifest/")).json()

    key = f"{MEDIA_KEY_PREFIX}/{report.file.name}"
    assert object_keys(media_bucket, MEDIA_BUCKET) == [key, f"{key}.manifest.json"]
    stored = media_bucket.get_object(Bucket=MEDIA_BUCKET, Key=key)["Body"].read()
    assert content == stored
    assert content.startswith(b"%PDF-")
    assert (len(content), hashlib.sha256(content).hexdigest()) == (report.size_bytes, report.sha256)
    stored_manifest = media_bucket.get_object(Bucket=MEDIA_BUCKET, Key=f"{key}.manifest.json")["Body"].read()
    assert json.loads(stored_manifest) == manifest
    assert manifest["sha256"] == report.sha256
    assert not settings.MEDIA_ROOT.exists()


@pytest.mark.django_db
def test_report_whose_object_is_gone_from_the_bucket_is_a_409_naming_the_file(
    api_client, compliance_user, media_bucket
):
    report = _generated(api_client, compliance_user, _body(kind=ReportKind.MFA_COVERAGE, fmt=ReportFormat.JSON))
    media_bucket.delete_object(Bucket=MEDIA_BUCKET, Key=f"{MEDIA_KEY_PREFIX}/{report.file.name}")

    response = api_client.get(_detail_url(report.pk, "download/"))

    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"The file of report #{report.pk} ({report.file.name}) is missing from storage."
    )
