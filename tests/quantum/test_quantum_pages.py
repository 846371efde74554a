"""Dashboard pages for quantum jobs, through Django's test client: access, form, rows, job page, cancel."""

import pytest
from django.utils import timezone

from apps.core.choices import Role
from apps.jobs.choices import JobStatus
from apps.quantum.models import QuantumJob
from apps.quantum.services import JobSpec, job_submit
from tests.factories import UserFactory
from tests.quantum_circuits import ghz_qasm2

pytestmark = pytest.mark.django_db

SUBMIT_FORM = 'id="submit-job"'


def _job(owner, **spec) -> QuantumJob:
    return job_submit(owner=owner, spec=JobSpec(source=ghz_qasm2(), **spec))


def _finish(job: QuantumJob, status: str, **fields) -> QuantumJob:
    QuantumJob.objects.filter(pk=job.pk).update(status=status, finished_at=timezone.now(), **fields)
    job.refresh_from_db()
    return job


def test_anonymous_is_sent_to_login_from_dashboard_and_job_page(client, operator_user):
    job = _job(operator_user)
    for path in ("/dashboard/", f"/dashboard/jobs/{job.pk}/", "/dashboard/status-counts/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.url == f"/accounts/login/?next={path}"


def test_admin_must_confirm_mfa_before_the_job_page(client, admin_user, operator_user):
    job = _job(operator_user)
    client.force_login(admin_user)
    response = client.get(f"/dashboard/jobs/{job.pk}/")
    assert response.status_code == 302
    assert response.url.startswith("/account/mfa/enroll/")


def test_operator_gets_the_dashboard_with_submit_form_counts_and_own_jobs(client, operator_user):
    mine = _job(operator_user, name="mine")
    _finish(_job(operator_user), JobStatus.COMPLETED, counts={"00000": 1024})
    client.force_login(operator_user)
    page = client.get("/dashboard/").content.decode()
    assert SUBMIT_FORM in page
    assert "qreg q[5];" in page  # the GHZ example
    assert 'data-submit-url="/api/v1/quantum/jobs/"' in page
    assert '<span class="count" data-count-for="queued" data-count="1">1</span>' in page
    assert '<span class="count" data-count-for="completed" data-count="1">1</span>' in page
    assert f'<tr data-job-id="{mine.pk}" data-status="queued"' in page
    assert f'href="/dashboard/jobs/{mine.pk}/"' in page
    assert 'data-socket-path="/ws/jobs/"' in page


def test_viewer_sees_everyones_jobs_without_the_submit_form(client, viewer_user, operator_user):
    job = _job(operator_user)
    client.force_login(viewer_user)
    page = client.get("/dashboard/").content.decode()
    assert SUBMIT_FORM not in page
    assert f'<tr data-job-id="{job.pk}"' in page
    assert '<span class="count" data-count-for="queued" data-count="1">1</span>' in page


def test_operator_does_not_see_another_operators_jobs(client, operator_user):
    other = UserFactory(username="olga-operator", roles=[Role.OPERATOR])
    job = _job(other)
    client.force_login(operator_user)
    page = client.get("/dashboard/").content.decode()
    assert f'data-job-id="{job.pk}"' not in page
    assert '<span class="count" data-count-for="queued" data-count="0">0</span>' in page
    for path in (f"/dashboard/jobs/{job.pk}/", f"/dashboard/jobs/{job.pk}/row/", f"/dashboard/jobs/{job.pk}/result/"):
        assert client.get(path).status_code == 404
    assert client.post(f"/dashboard/jobs/{job.pk}/cancel/").status_code == 404
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


def test_dashboard_puts_jobs_first_and_says_when_there_are_none(client, operator_user):
    client.force_login(operator_user)
    page = client.get("/dashboard/").content.decode()
    assert page.index('id="status-counts"') < page.index(SUBMIT_FORM) < page.index('id="recent-jobs"')
    assert page.index('id="recent-jobs"') < page.index('id="jobs-chart"')
    assert '<p id="no-jobs" class="empty-state">No jobs yet.' in page
    assert '<p id="chart-empty" class="empty-state">No job finished in the last 30 minutes' in page


def test_chart_empty_state_is_hidden_once_a_job_finished(client, operator_user):
    _finish(_job(operator_user), JobStatus.COMPLETED)
    client.force_login(operator_user)
    page = client.get("/dashboard/").content.decode()
    assert '<p id="no-jobs" class="empty-state" hidden>' in page
    assert '<p id="chart-empty" class="empty-state" hidden>' in page


def test_status_counts_answer_what_the_user_may_see(client, viewer_user, operator_user):
    _job(operator_user)
    _finish(_job(operator_user), JobStatus.FAILED, error="boom")
    client.force_login(viewer_user)
    counts = client.get("/dashboard/status-counts/").json()["counts"]
    assert counts == {"queued": 1, "running": 0, "completed": 0, "failed": 1, "cancelling": 0, "cancelled": 0}


def test_job_row_fragment_holds_qubits_shots_and_queue_position(client, operator_user):
    _job(operator_user)
    job = _job(operator_user, shots=77)
    client.force_login(operator_user)
    row = client.get(f"/dashboard/jobs/{job.pk}/row/").content.decode()
    assert '<td data-field="num_qubits" data-static>5</td>' in row
    assert '<td data-field="shots" data-static>77</td>' in row
    assert '<td data-field="queue_position">2</td>' in row


def test_completed_job_page_shows_histogram_and_circuit_drawing(client, operator_user):
    job = _finish(_job(operator_user), JobStatus.COMPLETED, counts={"00000": 510, "11111": 514}, duration_seconds=0.004)
    client.force_login(operator_user)
    page = client.get(f"/dashboard/jobs/{job.pk}/").content.decode()
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="histogram"' in page
    assert ">00000</text>" in page
    assert ">11111</text>" in page
    assert "q_0: ┤ H ├" in page  # Qiskit's text drawing
    assert 'id="cancel-job"' not in page  # nothing left to cancel
    assert f'data-socket-path="/ws/jobs/{job.pk}/"' in page
    assert client.get(f"/dashboard/jobs/{job.pk}/result/").content.decode().count("<svg") == 1


def test_failed_job_page_shows_the_error(client, operator_user):
    job = _finish(_job(operator_user), JobStatus.FAILED, error="Simulation ran out of time after 600 s.")
    client.force_login(operator_user)
    page = client.get(f"/dashboard/jobs/{job.pk}/").content.decode()
    assert '<p class="error" id="job-error">Simulation ran out of time after 600 s.</p>' in page
    assert "<svg" not in page


def test_owner_cancels_a_queued_job_from_its_page(client, operator_user):
    job = _job(operator_user)
    client.force_login(operator_user)
    assert 'id="cancel-job"' in client.get(f"/dashboard/jobs/{job.pk}/").content.decode()
    response = client.post(f"/dashboard/jobs/{job.pk}/cancel/", follow=True)
    assert response.redirect_chain == [(f"/dashboard/jobs/{job.pk}/", 302)]
    assert f"Job #{job.pk} is cancelled." in response.content.decode()
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED


def test_viewer_sees_no_cancel_button_and_cannot_cancel(client, viewer_user, operator_user):
    job = _job(operator_user)
    client.force_login(viewer_user)
    assert 'id="cancel-job"' not in client.get(f"/dashboard/jobs/{job.pk}/").content.decode()
    page = client.post(f"/dashboard/jobs/{job.pk}/cancel/", follow=True).content.decode()
    assert "Only the job&#x27;s owner (an operator) or an administrator may cancel it." in page
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


def test_cancelling_a_finished_job_says_so(client, operator_user):
    job = _finish(_job(operator_user), JobStatus.COMPLETED, counts={"00000": 1})
    client.force_login(operator_user)
    page = client.post(f"/dashboard/jobs/{job.pk}/cancel/", follow=True).content.decode()
    assert f"Job #{job.pk} is already completed; there is nothing to cancel." in page
