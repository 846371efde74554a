"""The admin writes date-times and counts as the portal does: <time> elements that the browser puts in the viewer's
zone, and thousands separators."""

from datetime import UTC, datetime

import pytest

from apps.quantum.models import QuantumJob
from apps.quantum.services import JobSpec, job_submit
from tests.quantum_circuits import ghz_qasm2

CREATED = datetime(2026, 12, 7, 13, 3, tzinfo=UTC)
CREATED_TIME = '<time datetime="2026-12-07T13:03:00Z">7 Dec 2026, 13:03 UTC</time>'


@pytest.fixture
def job(operator_user):
    job = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(), name="GHZ-5"))
    QuantumJob.objects.filter(pk=job.pk).update(created_at=CREATED, shots=100_000)
    return job


@pytest.mark.django_db
def test_a_date_time_column_shows_a_time_element_and_still_sorts(admin_client, job):
    page = admin_client.get("/admin/quantum/quantumjob/?o=9").content.decode()
    assert '<td class="field-created_at' in page
    assert CREATED_TIME in page
    # The column keeps its name and its sorting by the field (here sorted on it, ascending).
    assert "column-created_at sorted ascending" in page
    assert '<td class="field-shots' in page
    assert ">100,000</td>" in page


@pytest.mark.django_db
def test_read_only_date_times_on_a_detail_page_are_time_elements(admin_client, job):
    page = admin_client.get(f"/admin/quantum/quantumjob/{job.pk}/change/").content.decode()
    assert CREATED_TIME in page
    assert "field-created_at" in page  # the field keeps its name for styles and scripts
    assert "100,000" in page
    assert "Dec. 7, 2026" not in page  # no second format left from Django's default
