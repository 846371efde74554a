"""Quantum jobs API: submit one or a batch, validation messages, quotas, visibility, cancel, list, backends."""

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apps.core.choices import Role
from apps.jobs.choices import JobStatus
from apps.quantum.models import QuantumJob
from apps.quantum.services import JobSpec, job_submit, jobs_submit_batch
from tests.factories import UserFactory
from tests.helpers import api_error
from tests.quantum_circuits import ghz_qasm2, ghz_qasm3

pytestmark = pytest.mark.django_db

JOBS_URL = "/api/v1/quantum/jobs/"
BATCH_URL = "/api/v1/quantum/jobs/batch/"
BACKENDS_URL = "/api/v1/quantum/backends/"
NO_MEASUREMENTS = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[0];\ncx q[0],q[1];\n'


def _detail_url(job_id: int) -> str:
    return f"{JOBS_URL}{job_id}/"


def _cancel_url(job_id: int) -> str:
    return f"{JOBS_URL}{job_id}/cancel/"


def _submit(user, **spec) -> QuantumJob:
    return job_submit(owner=user, spec=JobSpec(source=spec.pop("source", ghz_qasm2()), **spec))


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [job["id"] for job in response.json()["results"]]


@pytest.fixture
def operator_client(api_client, operator_user):
    api_client.force_authenticate(operator_user)
    return api_client


@pytest.fixture
def other_operator(db):
    return UserFactory(username="olga-operator", roles=[Role.OPERATOR])


# --- Submitting and running


def test_submitted_ghz_job_runs_and_its_detail_shows_only_all_zeros_and_all_ones(celery_worker, operator_client):
    response = operator_client.post(JOBS_URL, {"source": ghz_qasm2(5), "shots": 2000, "name": "ghz"}, format="json")

    assert response.status_code == 201, response.content
    created = response.json()
    assert response["Location"].endswith(_detail_url(created["id"]))
    assert created["owner"] == "oscar-operator"
    assert (created["num_qubits"], created["qasm_version"], created["method"]) == (5, 2, "automatic")
    assert created["counts"] is None
    deadline = time.monotonic() + 30
    job = created
    while job["status"] not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.05)
        job = operator_client.get(_detail_url(created["id"])).json()
    assert job["status"] == "completed", job["error"]
    assert set(job["counts"]) == {"00000", "11111"}
    assert sum(job["counts"].values()) == 2000
    assert job["duration_seconds"] > 0
    assert (job["queue_position"], job["eta_seconds"]) == (None, None)


def test_submit_fills_defaults_and_keeps_the_settings(operator_client):
    body = {
        "source": ghz_qasm3(3),
        "method": "statevector",
        "tags": ["ghz", "demo"],
        "seed": 7,
        "noise": {"depolarizing_2q": 0.01, "readout": 0.02},
        "priority": 3,
    }
    job = operator_client.post(JOBS_URL, body, format="json").json()

    assert job["shots"] == 1024
    assert job["qasm_version"] == 3
    assert job["tags"] == ["ghz", "demo"]
    assert (job["seed"], job["priority"]) == (7, 3)
    assert job["noise"] == {"depolarizing_1q": 0.0, "depolarizing_2q": 0.01, "readout": 0.02}
    assert job["status"] == "queued"
    assert job["queue_position"] == 1


def test_measure_all_true_accepts_a_circuit_without_measurements(operator_client):
    response = operator_client.post(JOBS_URL, {"source": NO_MEASUREMENTS, "measure_all": True}, format="json")

    assert response.status_code == 201, response.content
    job = response.json()
    assert job["measure_all"] is True
    assert job["gate_counts"]["measure"] == 2


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        (
            {"source": 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[0]\ncx q[0],q[1];\n'},
            "source",
            "OpenQASM 2 error at line 5, column 1: needed ';'",
        ),
        (
            {"source": 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nh q[0]\ncx q[0], q[1];\n'},
            "source",
            "OpenQASM 3 syntax error: line 5, column 1: missing ';'",
        ),
        (
            {"source": 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nfoo q[0];\n'},
            "source",
            "OpenQASM 3 error at line 4, column 1: gate 'foo' is not defined",
        ),
        ({"source": NO_MEASUREMENTS}, "source", "The circuit has no measurements, so it would produce no counts. Add"),
        ({"shots": 0}, "shots", "A job runs from 1 to at most 100,000 shots; got 0."),
        ({"shots": 100_001}, "shots", "A job runs from 1 to at most 100,000 shots; got 100,001."),
        ({"shots": "many"}, "shots", "A valid integer is required."),
        ({"method": "quantum_annealing"}, "method", "Unknown method 'quantum_annealing'; choose one of automatic,"),
        ({"noise": {"depolarising_1q": 0.1}}, "noise", "Unknown noise setting 'depolarising_1q'"),
        ({"tags": ["has space"]}, "tags", "Tag 'has space' is not allowed"),
        ({"priority": 11}, "priority", "Priority must be between -10 and 10; got 11."),
    ],
    ids=[
        "qasm2-parse",
        "qasm3-syntax",
        "qasm3-undefined-gate",
        "no-measurements",
        "zero-shots",
        "too-many-shots",
        "shots-not-a-number",
        "unknown-method",
        "unknown-noise",
        "bad-tag",
        "priority",
    ],
)
def test_invalid_job_is_refused_with_its_message(operator_client, body, field, expected):
    response = operator_client.post(JOBS_URL, {"source": ghz_qasm2(), **body}, format="json")

    body = api_error(response, 400, "invalid")
    assert body["errors"][field][0].startswith(expected), body
    assert body["detail"].startswith(f"{field}: {expected}")
    assert not QuantumJob.objects.exists()


def test_too_many_qubits_for_statevector_names_needed_and_allowed_memory_and_suggests_mps(operator_client, settings):
    settings.QUANTUM_MAX_MEMORY_MB = 1

    response = operator_client.post(JOBS_URL, {"source": ghz_qasm2(17), "method": "statevector"}, format="json")

    message = api_error(response, 400, "invalid")["errors"]["source"][0]
    assert message.startswith("17 qubits need 2.0 MiB for the statevector method, over the limit of 1.0 MiB")
    assert "QUANTUM_MAX_MEMORY_MB" not in message  # the limit is named by its value, not its setting
    assert "matrix_product_state" in message


def test_source_over_one_mebibyte_is_refused_naming_the_limit(operator_client):
    source = ghz_qasm2() + "// padding\n" * 100_000

    response = operator_client.post(JOBS_URL, {"source": source}, format="json")

    message = api_error(response, 400, "invalid")["errors"]["source"][0]
    assert message == f"The program is {len(source):,} bytes; the limit is 1,048,576 bytes."


def test_over_the_queued_jobs_quota_gives_429_with_the_numbers(operator_client, settings):
    settings.QUANTUM_MAX_QUEUED_PER_USER = 2
    for _ in range(2):  # without a worker they stay queued
        assert operator_client.post(JOBS_URL, {"source": ghz_qasm2()}, format="json").status_code == 201

    body = api_error(operator_client.post(JOBS_URL, {"source": ghz_qasm2()}, format="json"), 429, "quota_exceeded")

    assert body["detail"].startswith("You have 2 queued jobs and submitted 1 more; at most 2 may wait at once")
    assert QuantumJob.objects.count() == 2


@pytest.mark.parametrize("role", ["viewer_user", "compliance_user", "outsider_user"])
@pytest.mark.parametrize("url", [JOBS_URL, BATCH_URL])
def test_only_operators_and_admins_may_submit(api_client, request, role, url):
    api_client.force_authenticate(request.getfixturevalue(role))
    body = {"source": ghz_qasm2(), "jobs": [{"source": ghz_qasm2()}]}

    response = api_client.post(url, body, format="json")

    assert api_error(response, 403, "permission_denied")["detail"] == (
        "Only operators and administrators may submit quantum jobs."
    )
    assert not QuantumJob.objects.exists()


def test_admin_may_submit(api_client, admin_user):
    api_client.force_authenticate(admin_user)
    assert api_client.post(JOBS_URL, {"source": ghz_qasm2()}, format="json").status_code == 201


def test_anonymous_cannot_submit_or_list(api_client):
    api_error(api_client.post(JOBS_URL, {"source": ghz_qasm2()}, format="json"), 401, "not_authenticated")
    api_error(api_client.get(JOBS_URL), 401, "not_authenticated")


# --- Batches


def test_batch_queues_every_job_and_answers_their_ids(operator_client):
    items = [{"source": ghz_qasm2(), "tags": ["batch"]}, {"source": ghz_qasm3(), "shots": 10}, {"source": ghz_qasm2(3)}]

    response = operator_client.post(BATCH_URL, {"jobs": items}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["count"] == 3
    jobs = QuantumJob.objects.filter(id__in=body["ids"]).order_by("id")
    assert [job.id for job in jobs] == body["ids"]
    assert [(job.num_qubits, job.shots, job.status) for job in jobs] == [
        (5, 1024, "queued"),
        (3, 10, "queued"),
        (3, 1024, "queued"),
    ]


def test_batch_with_one_invalid_circuit_names_its_index_and_submits_nothing(operator_client):
    items = [{"source": ghz_qasm2()}] * 3 + [{"source": NO_MEASUREMENTS}] + [{"source": ghz_qasm2()}]

    body = api_error(operator_client.post(BATCH_URL, {"jobs": items}, format="json"), 400, "invalid")

    assert list(body["errors"]) == ["3"]
    assert body["errors"]["3"]["source"][0].startswith("The circuit has no measurements")
    assert body["detail"].startswith("1 of the jobs is invalid; nothing was submitted. Job 3: source: The circuit has")
    assert not QuantumJob.objects.exists()


def test_batch_items_of_the_wrong_type_are_named_by_index(operator_client):
    items = [{"source": ghz_qasm2()}, {"source": ghz_qasm2(), "shots": "lots"}, "not a job", {"shots": 5}]

    body = api_error(operator_client.post(BATCH_URL, {"jobs": items}, format="json"), 400, "invalid")

    assert body["errors"]["1"] == {"shots": ["A valid integer is required."]}
    assert body["errors"]["2"]["non_field_errors"][0].startswith("Invalid data. Expected a dictionary")
    assert body["errors"]["3"] == {"source": ["This field is required."]}
    assert "0" not in body["errors"]
    assert body["detail"].startswith("3 of the jobs are invalid; nothing was submitted. Job 1: shots: A valid integer")
    assert not QuantumJob.objects.exists()


@pytest.mark.parametrize(("size", "expected"), [(501, "this one has 501."), (0, "this one has 0.")])
def test_batch_outside_the_size_limit_is_refused_naming_the_limit(operator_client, size, expected):
    body = api_error(operator_client.post(BATCH_URL, {"jobs": [{}] * size}, format="json"), 400, "invalid")

    assert body["errors"] == {"jobs": [f"A batch holds 1 to 500 jobs; {expected}"]}


def test_batch_over_the_queued_jobs_quota_gives_429_and_submits_nothing(operator_client, settings):
    settings.QUANTUM_MAX_QUEUED_PER_USER = 3

    response = operator_client.post(BATCH_URL, {"jobs": [{"source": ghz_qasm2()}] * 4}, format="json")

    assert "submitted 4 more; at most 3 may wait" in api_error(response, 429, "quota_exceeded")["detail"]
    assert not QuantumJob.objects.exists()


# --- Who sees what


def test_outsider_sees_no_jobs(api_client, outsider_user, operator_user):
    job = _submit(operator_user)
    api_client.force_authenticate(outsider_user)

    assert api_client.get(JOBS_URL).json()["count"] == 0
    api_error(api_client.get(_detail_url(job.id)), 404, "not_found")


def test_owner_sees_only_own_jobs_and_others_are_404(operator_client, operator_user, other_operator):
    own = _submit(operator_user)
    others = _submit(other_operator)

    assert _ids(operator_client.get(JOBS_URL)) == [own.id]
    assert operator_client.get(_detail_url(own.id)).status_code == 200
    api_error(operator_client.get(_detail_url(others.id)), 404, "not_found")
    api_error(operator_client.post(_cancel_url(others.id)), 404, "not_found")
    assert QuantumJob.objects.get(id=others.id).status == JobStatus.QUEUED


@pytest.mark.parametrize("role", ["viewer_user", "admin_user"])
def test_viewers_and_admins_see_all_jobs(api_client, request, role, operator_user, other_operator):
    jobs = [_submit(operator_user), _submit(other_operator)]
    api_client.force_authenticate(request.getfixturevalue(role))

    assert _ids(api_client.get(JOBS_URL)) == [jobs[1].id, jobs[0].id]
    assert api_client.get(_detail_url(jobs[0].id)).json()["source"] == ghz_qasm2()


def test_owner_filter_narrows_to_one_user_within_what_the_user_may_see(
    operator_client, viewer_user, operator_user, other_operator
):
    own = _submit(operator_user)
    others = _submit(other_operator)
    viewer_client = APIClient()
    viewer_client.force_authenticate(viewer_user)

    assert _ids(viewer_client.get(JOBS_URL, {"owner": "olga-operator"})) == [others.id]
    assert _ids(operator_client.get(JOBS_URL, {"owner": "oscar-operator"})) == [own.id]
    assert _ids(operator_client.get(JOBS_URL, {"owner": "olga-operator"})) == []


# --- Cancel


def test_owner_cancels_a_queued_job_at_once(operator_client, operator_user):
    job = _submit(operator_user)

    response = operator_client.post(_cancel_url(job.id))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "cancelled"
    assert body["error"] == "Cancelled by oscar-operator before it ran."
    assert body["queue_position"] is None
    assert QuantumJob.objects.get(id=job.id).status == JobStatus.CANCELLED


def test_cancelling_a_finished_job_is_a_conflict(operator_client, operator_user):
    job = _submit(operator_user)
    QuantumJob.objects.filter(id=job.id).update(status=JobStatus.COMPLETED, finished_at=timezone.now())

    body = api_error(operator_client.post(_cancel_url(job.id)), 409, "conflict")

    assert body["detail"] == f"Job #{job.id} is already completed; there is nothing to cancel."


def test_viewer_cannot_cancel_others_job(api_client, viewer_user, operator_user):
    job = _submit(operator_user)
    api_client.force_authenticate(viewer_user)

    body = api_error(api_client.post(_cancel_url(job.id)), 403, "permission_denied")

    assert body["detail"] == "Only the job's owner (an operator) or an administrator may cancel it."
    assert QuantumJob.objects.get(id=job.id).status == JobStatus.QUEUED


def test_admin_cancels_others_job(api_client, admin_user, operator_user):
    job = _submit(operator_user)
    api_client.force_authenticate(admin_user)

    assert api_client.post(_cancel_url(job.id)).json()["status"] == "cancelled"


# --- Listing


def test_list_filters_by_status_method_tag_and_creation_time(operator_client, operator_user):
    ghz = _submit(operator_user, tags=("ghz", "ghz-5"))
    mps = _submit(operator_user, method="matrix_product_state", tags=("mps",))
    cancelled = _submit(operator_user, tags=("ghz-5",))
    operator_client.post(_cancel_url(cancelled.id))
    earlier = timezone.now() - timedelta(hours=2)
    QuantumJob.objects.filter(id=ghz.id).update(created_at=earlier)

    def ids(**params) -> set[int]:
        return set(_ids(operator_client.get(JOBS_URL, params)))

    assert ids(status="queued") == {ghz.id, mps.id}
    assert ids(status=["queued", "cancelled"]) == {ghz.id, mps.id, cancelled.id}
    assert ids(method="matrix_product_state") == {mps.id}
    assert ids(tag="ghz") == {ghz.id}
    assert ids(tag="ghz-5") == {ghz.id, cancelled.id}
    assert ids(tag="GHZ") == set()
    assert ids(created_before=(earlier + timedelta(minutes=1)).isoformat()) == {ghz.id}
    assert ids(created_after=(earlier + timedelta(minutes=1)).isoformat()) == {mps.id, cancelled.id}


@pytest.mark.parametrize(
    ("params", "field", "expected"),
    [
        ({"status": "done"}, "status", "Select a valid choice. done is not one of the available choices."),
        ({"created_after": "yesterday"}, "created_after", "Enter an ISO 8601 date/time"),
    ],
    ids=["status", "created_after"],
)
def test_invalid_list_parameters_are_refused_naming_them(operator_client, params, field, expected):
    response = operator_client.get(JOBS_URL, params)

    assert api_error(response, 400, "invalid")["errors"][field][0].startswith(expected)


def test_list_orders_by_the_asked_field_with_ties_broken_by_id(operator_client, operator_user):
    first, second, third = (_submit(operator_user, shots=shots) for shots in (10, 500, 10))
    same_time = timezone.now()
    QuantumJob.objects.filter(pk__in=[first.pk, third.pk]).update(created_at=same_time)
    QuantumJob.objects.filter(pk=second.pk).update(created_at=same_time - timedelta(minutes=1))

    assert _ids(operator_client.get(JOBS_URL, {"ordering": "created_at"})) == [second.id, first.id, third.id]
    assert _ids(operator_client.get(JOBS_URL, {"ordering": "-created_at"})) == [third.id, first.id, second.id]
    assert _ids(operator_client.get(JOBS_URL, {"ordering": "id"})) == [first.id, second.id, third.id]
    assert _ids(operator_client.get(JOBS_URL)) == [third.id, second.id, first.id]


def test_list_shows_queue_positions_by_priority_and_eta_from_recent_throughput(operator_client, operator_user):
    low, high, done = (_submit(operator_user, priority=priority) for priority in (0, 5, 0))
    # Three jobs finished in the last ten minutes: 3 / 600 s = 0.005 jobs per second.
    QuantumJob.objects.filter(id=done.id).update(status=JobStatus.COMPLETED, finished_at=timezone.now())
    for _ in range(2):
        finished = _submit(operator_user)
        QuantumJob.objects.filter(id=finished.id).update(status=JobStatus.FAILED, finished_at=timezone.now())

    jobs = {job["id"]: job for job in operator_client.get(JOBS_URL).json()["results"]}

    assert (jobs[high.id]["queue_position"], jobs[high.id]["eta_seconds"]) == (1, 200.0)
    assert (jobs[low.id]["queue_position"], jobs[low.id]["eta_seconds"]) == (2, 400.0)
    assert (jobs[done.id]["queue_position"], jobs[done.id]["eta_seconds"]) == (None, None)
    assert not {"source", "counts"} & set(jobs[low.id])
    detail = operator_client.get(_detail_url(low.id)).json()
    assert (detail["queue_position"], detail["eta_seconds"]) == (2, 400.0)


def test_eta_is_null_without_recent_throughput(operator_client, operator_user):
    job = _submit(operator_user)

    detail = operator_client.get(_detail_url(job.id)).json()

    assert (detail["queue_position"], detail["eta_seconds"]) == (1, None)


def _jobs_of_three_priorities(user, count: int) -> None:
    """``count`` jobs of priorities 0, 1 and 2; every fourth finished, so each priority has several queued."""
    jobs = jobs_submit_batch(owner=user, specs=[JobSpec(source=ghz_qasm2(), priority=n % 3) for n in range(count)])
    finished = [job.id for job in jobs[3::4]]
    QuantumJob.objects.filter(id__in=finished).update(status=JobStatus.COMPLETED, finished_at=timezone.now())


def test_queue_positions_follow_the_queue_across_priorities_and_other_owners_jobs(
    operator_client, operator_user, admin_user
):
    _jobs_of_three_priorities(operator_user, 12)
    # Another owner's queued jobs, invisible to the operator, still stand ahead of some of theirs.
    jobs_submit_batch(owner=admin_user, specs=[JobSpec(source=ghz_qasm2(), priority=n % 3) for n in range(5)])
    queued = QuantumJob.objects.filter(status=JobStatus.QUEUED).order_by("-priority", "id")
    expected = {job.id: place for place, job in enumerate(queued, start=1) if job.owner_id == operator_user.id}

    jobs = operator_client.get(JOBS_URL, {"page_size": 100}).json()["results"]

    assert {job["id"]: job["queue_position"] for job in jobs if job["status"] == "queued"} == expected
    assert len(expected) == 9


@pytest.mark.parametrize("role", ["viewer_user", "operator_user"])
def test_list_query_count_does_not_grow_with_the_number_of_jobs(
    api_client, request, role, operator_user, django_assert_max_num_queries
):
    api_client.force_authenticate(request.getfixturevalue(role))
    _jobs_of_three_priorities(operator_user, 8)
    with CaptureQueriesContext(connection) as few:
        assert len(_ids(api_client.get(JOBS_URL, {"page_size": 100}))) == 8

    _jobs_of_three_priorities(operator_user, 52)
    with django_assert_max_num_queries(len(few)):
        assert len(_ids(api_client.get(JOBS_URL, {"page_size": 100}))) == 60
    # Roles, count, page, throughput, and one for the positions of the queued jobs shown, whatever their priorities.
    assert len(few) <= 6


# --- Backends and the API root


def test_backends_list_each_method_with_its_largest_register(operator_client, operator_user, settings):
    settings.QUANTUM_MAX_MEMORY_MB = 4096
    _submit(operator_user)

    listed = operator_client.get(BACKENDS_URL).json()
    backends = {backend["method"]: backend for backend in listed if backend["kind"] == "simulator"}

    assert set(backends) == {
        "automatic",
        "statevector",
        "density_matrix",
        "matrix_product_state",
        "stabilizer",
        "extended_stabilizer",
    }
    assert backends["statevector"]["max_qubits"] == 28  # 16 bytes * 2**28 = 4 GiB
    assert backends["density_matrix"]["max_qubits"] == 14  # 16 bytes * 4**14 = 4 GiB
    assert backends["matrix_product_state"]["max_qubits"] is None
    assert backends["statevector"]["max_shots"] == 100_000
    assert backends["statevector"]["queue_length"] == 1


def test_api_root_links_the_quantum_endpoints(operator_client):
    body = operator_client.get("/api/v1/").json()

    assert body["quantum-jobs"].endswith(JOBS_URL)
    assert body["quantum-backends"].endswith(BACKENDS_URL)
