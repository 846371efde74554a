"""Compliance reports with a media bucket that cannot be used: the download is a 503 (API) or an error message
(page) saying so, and a report generated meanwhile fails saying why, with no file; no key shows anywhere."""

import logging

import pytest

from apps.compliance.choices import ReportFormat, ReportKind
from apps.compliance.models import Report
from apps.jobs.choices import JobStatus
from tests.compliance.test_compliance_api import REPORTS_URL, _body, _detail_url, _generated, run_report
from tests.mfa import sudo_force_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.INFO)
    return caplog


def test_download_from_an_unusable_bucket_is_a_503_saying_so(
    api_client, compliance_user, media_bucket, unusable_media, logs
):
    report = _generated(api_client, compliance_user, _body(kind=ReportKind.MFA_COVERAGE, fmt=ReportFormat.JSON))
    unusable_media.use()

    response = api_client.get(_detail_url(report.pk, "download/"))

    assert response.status_code == 503, response.content
    assert response.json() == {"detail": unusable_media.message, "code": "unavailable", "retry_after_seconds": 30}
    unusable_media.assert_not_shown(response.content.decode(), logs.text)


def test_download_page_from_an_unusable_bucket_shows_the_message(
    client, api_client, compliance_user, media_bucket, unusable_media
):
    report = _generated(api_client, compliance_user, _body(kind=ReportKind.MFA_COVERAGE, fmt=ReportFormat.JSON))
    sudo_force_login(client, compliance_user)
    unusable_media.use()

    response = client.get(f"/compliance/reports/{report.pk}/download/", follow=True)

    assert response.status_code == 200
    assert [str(message) for message in response.context["messages"]] == [unusable_media.message]


def test_report_generated_into_an_unusable_bucket_fails_saying_why_and_keeps_no_file(
    api_client, compliance_user, unusable_media, settings, tmp_path, logs
):
    settings.MEDIA_ROOT = tmp_path / "media"
    sudo_force_login(api_client, compliance_user)
    response = api_client.post(REPORTS_URL, _body(kind=ReportKind.MFA_COVERAGE, fmt=ReportFormat.JSON), format="json")
    assert response.status_code == 202, response.content
    unusable_media.use()

    run_report(response.json()["id"])

    report = Report.objects.get(pk=response.json()["id"])
    assert (report.status, report.error) == (JobStatus.FAILED, unusable_media.message)
    assert not report.file
    assert not settings.MEDIA_ROOT.exists()
    unusable_media.assert_not_shown(logs.text)
