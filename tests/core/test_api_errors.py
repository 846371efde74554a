"""Application errors reach API clients through the one DRF exception handler: the service's message, the status
it chose, and the project's error body — never a 500."""

import pytest

from apps.accounts.tokens import token_create
from apps.compliance.choices import ReportFormat, ReportKind
from apps.compliance.models import Report
from apps.compliance.services import previous_month
from apps.jobs.choices import JobStatus
from tests.mfa import sudo_force_login, totp_device_create

REPORTS_URL = "/api/v1/compliance/reports/"


@pytest.mark.django_db
def test_download_of_a_report_whose_file_vanished_is_a_409_naming_the_file(
    api_client, compliance_user, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    start, end = previous_month()
    report = Report.objects.create(
        status=JobStatus.COMPLETED,
        kind=ReportKind.ACCESS_REVIEW,
        format=ReportFormat.PDF,
        period_start=start,
        period_end=end,
        file="compliance/reports/vanished.pdf",
    )
    sudo_force_login(api_client, compliance_user)

    response = api_client.get(f"{REPORTS_URL}{report.pk}/download/")

    assert response.status_code == 409, response.content
    assert response.json() == {
        "detail": f"The file of report #{report.pk} (compliance/reports/vanished.pdf) is missing from storage.",
        "code": "conflict",
    }


@pytest.mark.django_db
def test_api_token_is_refused_naming_the_action_it_asked_for(api_client, compliance_user):
    totp_device_create(compliance_user)  # a token of a user without MFA is refused before the sudo rule
    issued = token_create(owner=compliance_user, name="ci", scopes=["read", "write"], expires_in_days=1)
    start, end = previous_month()
    body = {"kind": ReportKind.MFA_COVERAGE, "format": ReportFormat.JSON, "period_start": start, "period_end": end}

    response = api_client.post(REPORTS_URL, body, format="json", HTTP_AUTHORIZATION=f"Bearer {issued.secret}")

    assert response.status_code == 403, response.content
    assert response.json()["code"] == "reauthentication_required"
    assert response.json()["detail"].startswith("API tokens cannot be used for generating a report: sign in with")
    assert not Report.objects.exists()
