"""Parameter sweeps: OpenQASM 3 input parameters, parameter_sets checked at submit, all sets run in one call."""

import math
import time
from collections import Counter

import pytest

from apps.audit.models import AuditEvent
from apps.jobs.choices import JobStatus
from apps.quantum.models import QuantumJob
from apps.quantum.primitives import MAX_BITSTRINGS, MAX_SWEEP_OUTCOMES
from apps.quantum.services import JobSpec, JobValidationError, job_rerun, job_submit
from tests.helpers import api_error, job_wait
from tests.quantum.job_streams import JOBS_URL, submitted_job_statuses
from tests.quantum_circuits import ghz_qasm2, ghz_qasm3, rotation_qasm3

TWO_PARAMETERS = rotation_qasm3(parameters=("theta", "phi"))


@pytest.fixture
def operator_client(api_client, operator_user):
    api_client.force_authenticate(operator_user)
    return api_client


def _wait_api(client, job_id: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"{JOBS_URL}{job_id}/").json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} stayed {job['status']}")


# --- Found on main: a parameterised OpenQASM 3 program passed submit and failed in the worker


@pytest.mark.django_db
def test_parameterised_program_without_parameter_sets_is_refused_at_submit_naming_its_parameters(operator_client):
    response = operator_client.post(JOBS_URL, {"source": TWO_PARAMETERS}, format="json")

    body = api_error(response, 400, "invalid")
    message = body["errors"]["parameter_sets"][0]
    assert "input parameters (phi, theta)" in message
    assert "no parameter_sets were given" in message
    assert not QuantumJob.objects.exists()


@pytest.mark.django_db
def test_submit_records_the_circuits_parameters_and_the_sweep(operator_client):
    sets = [{"theta": 0.1, "phi": 0.2}, {"theta": 1, "phi": -3}]
    response = operator_client.post(JOBS_URL, {"source": TWO_PARAMETERS, "parameter_sets": sets}, format="json")

    assert response.status_code == 201, response.content
    job = response.json()
    assert job["parameters"] == ["phi", "theta"]
    assert job["parameter_sets"] == [{"phi": 0.2, "theta": 0.1}, {"phi": -3.0, "theta": 1.0}]
    assert (job["primitive"], job["sweep_size"], job["results"]) == ("sampler", 2, None)
    submitted = AuditEvent.objects.get(action="quantum.job.submitted")
    assert submitted.changes["parameter_sets"] == 2


# --- Refusals, each naming the parameter and the set


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        ({"parameter_sets": [{"theta": 1.0}]}, "parameter_sets", "Parameter set 0 lacks a value for phi."),
        (
            {"parameter_sets": [{"theta": 1, "phi": 2}, {"theta": 1, "phi": 2, "gamma": 3}]},
            "parameter_sets",
            "Parameter set 1 names gamma, which the circuit does not have; its parameters are phi, theta.",
        ),
        (
            {"parameter_sets": [{"theta": "pi", "phi": 2}]},
            "parameter_sets",
            "Parameter set 0: theta must be a finite real number; got 'pi'.",
        ),
        (
            {"parameter_sets": [{"theta": 1, "phi": 2}, {"theta": True, "phi": 2}]},
            "parameter_sets",
            "Parameter set 1: theta must be a finite real number; got True.",
        ),
        (
            {"parameter_sets": [{"theta": 1, "phi": None}]},
            "parameter_sets",
            "Parameter set 0: phi must be a finite real number; got None.",
        ),
        ({"parameter_sets": []}, "parameter_sets", "parameter_sets is a list of 1 to 3 objects; got 0 sets."),
        (
            {"parameter_sets": [{"theta": 1, "phi": 2}] * 4},
            "parameter_sets",
            "parameter_sets is a list of 1 to 3 objects; got 4 sets.",
        ),
        ({"parameter_sets": {"theta": 1}}, "parameter_sets", "parameter_sets is a list of 1 to 3 objects; got dict."),
        ({"parameter_sets": [[1, 2]]}, "parameter_sets", "Parameter set 0 is not an object of names and numbers"),
        (
            {"source": ghz_qasm3(2), "parameter_sets": [{"theta": 1}]},
            "parameter_sets",
            "The circuit has no input parameters; omit parameter_sets",
        ),
        (
            {"parameter_sets": [{"theta": 1, "phi": 2}] * 2, "shots": 60_000, "bitstrings": True},
            "bitstrings",
            f"Per-shot bitstrings are kept for up to {MAX_BITSTRINGS:,} shots (shots times parameter sets); "
            "this job has 120,000.",
        ),
        ({"primitive": "annealer"}, "primitive", "Unknown primitive 'annealer'; choose one of sampler, estimator."),
        (
            {"parameter_sets": [{"theta": 1, "phi": 2}], "observables": [[["ZZ", 1]]]},
            "observables",
            'observables applies to "primitive": "estimator" jobs only.',
        ),
    ],
    ids=[
        "missing",
        "extra",
        "string",
        "bool",
        "null",
        "empty",
        "over-the-limit",
        "not-a-list",
        "set-not-an-object",
        "no-parameters",
        "bitstrings-cap",
        "unknown-primitive",
        "observables-on-sampler",
    ],
)
def test_invalid_sweep_is_refused_naming_the_problem(operator_client, settings, body, field, expected):
    settings.QUANTUM_MAX_SWEEP = 3
    response = operator_client.post(JOBS_URL, {"source": TWO_PARAMETERS, **body}, format="json")

    body = api_error(response, 400, "invalid")
    assert body["errors"][field][0].startswith(expected), body
    assert body["detail"].startswith(f"{field}: {expected}")
    assert not QuantumJob.objects.exists()


@pytest.mark.django_db
def test_sweep_whose_counts_could_outgrow_the_limit_is_refused_but_few_outcomes_per_set_are_not(
    operator_client, settings
):
    settings.QUANTUM_MAX_SWEEP = 100_000
    wide = "\n".join(
        ["OPENQASM 3.0;", 'include "stdgates.inc";', "input float theta;", "qubit[20] q;", "rx(theta) q[0];", ""]
    )
    sets = [{"theta": 0.1}] * 1000
    body = {"source": wide, "measure_all": True, "shots": 1001, "parameter_sets": sets}

    refused = api_error(operator_client.post(JOBS_URL, body, format="json"), 400, "invalid")

    assert refused["errors"]["parameter_sets"][0] == (
        f"A sweep's counts may hold up to {MAX_SWEEP_OUTCOMES:,} outcomes in all; 1,000 sets of up to 1,001 outcomes "
        "each (the lesser of shots and 2 to the number of bits) could hold 1,001,000. Use fewer shots or fewer "
        "parameter sets."
    )
    # One measured qubit has two outcomes, whatever the shots.
    narrow = {"source": rotation_qasm3(), "shots": 100_000, "parameter_sets": [{"theta": 0.1}] * 5000}
    settings.QUANTUM_DAILY_SHOTS_QUOTA = 10**9
    assert operator_client.post(JOBS_URL, narrow, format="json").status_code == 201


@pytest.mark.django_db
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinite_values_are_refused(operator_user, value):
    # JSON bodies cannot carry them (the API's parser is strict); Python callers of the service can.
    spec = JobSpec(source=TWO_PARAMETERS, parameter_sets=[{"theta": value, "phi": 0.0}])

    with pytest.raises(JobValidationError) as refused:
        job_submit(owner=operator_user, spec=spec)

    assert refused.value.field == "parameter_sets"
    assert f"Parameter set 0: theta must be a finite real number; got {value!r}." == refused.value.message


@pytest.mark.django_db
def test_shots_times_sets_count_against_the_daily_quota(operator_client, settings):
    settings.QUANTUM_DAILY_SHOTS_QUOTA = 1000
    sets = [{"theta": 0.0, "phi": 0.0}] * 11
    response = operator_client.post(
        JOBS_URL, {"source": TWO_PARAMETERS, "shots": 100, "parameter_sets": sets}, format="json"
    )

    assert response.status_code == 429, response.content
    assert "asked for 1,100 more; the daily quota is 1,000" in response.json()["detail"]
    ten = operator_client.post(
        JOBS_URL, {"source": TWO_PARAMETERS, "shots": 100, "parameter_sets": sets[:10]}, format="json"
    )
    assert ten.status_code == 201, ten.content
    one_more = operator_client.post(JOBS_URL, {"source": ghz_qasm2(2), "shots": 1}, format="json")
    assert "Today you have submitted 1,000 shots" in one_more.json()["detail"]


# --- Running on a real worker


def test_sweep_returns_one_result_per_set_in_order_with_counts_that_follow_the_angle(celery_worker, operator_user):
    # ry(theta) then measure: P(1) = sin²(theta / 2).
    angles = [0.0, math.pi, math.pi / 2, math.pi / 3, 2.0]
    sets = [{"theta": angle} for angle in angles]
    job = job_submit(owner=operator_user, spec=JobSpec(source=rotation_qasm3(), shots=4000, parameter_sets=sets))

    job_wait(job, [JobStatus.COMPLETED, JobStatus.FAILED])

    assert job.status == JobStatus.COMPLETED, job.error
    assert job.counts is None  # a sweep's counts are in its results, one per set
    assert [entry["parameters"] for entry in job.results] == sets
    assert job.results[0]["counts"] == {"0": 4000}
    assert job.results[1]["counts"] == {"1": 4000}
    for angle, entry in zip(angles[2:], job.results[2:], strict=True):
        ones = entry["counts"].get("1", 0) / 4000
        # 4,000 shots: one standard deviation is at most 0.8 percentage points.
        assert abs(ones - math.sin(angle / 2) ** 2) < 0.04, (angle, entry)


def test_job_without_a_sweep_keeps_counts_and_bitstrings_match_them(celery_worker, operator_user):
    job = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(3), shots=300, seed=11, bitstrings=True))

    job_wait(job, [JobStatus.COMPLETED, JobStatus.FAILED])

    assert job.status == JobStatus.COMPLETED, job.error
    (entry,) = job.results
    assert entry["parameters"] == {}
    assert job.counts == entry["counts"]
    assert len(entry["bitstrings"]) == 300
    assert Counter(entry["bitstrings"]) == Counter(job.counts)
    assert set(job.counts) == {"000", "111"}


def test_sweep_of_100_sets_runs_end_to_end_through_the_api_and_the_websocket_stream(
    celery_worker, client, operator_client, operator_user
):
    sets = [{"theta": math.pi * index / 99} for index in range(100)]
    body = {"source": rotation_qasm3(), "shots": 256, "parameter_sets": sets, "name": "sweep"}
    job_id, statuses = submitted_job_statuses(client, operator_client, operator_user, body)

    assert statuses == [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.COMPLETED]
    job = _wait_api(operator_client, job_id)
    assert len(job["results"]) == 100
    assert [entry["parameters"] for entry in job["results"]] == sets
    assert all(sum(entry["counts"].values()) == 256 for entry in job["results"])
    assert job["results"][0]["counts"] == {"0": 256}
    assert job["results"][-1]["counts"] == {"1": 256}
    assert job["sweep_size"] == 100
    # The list stays light: it names the primitive and the sweep's size but carries no results.
    listed = operator_client.get(JOBS_URL).json()["results"][0]
    assert (listed["primitive"], listed["sweep_size"]) == ("sampler", 100)
    assert "results" not in listed


@pytest.mark.django_db
def test_rerun_copies_the_sweep(operator_user):
    sets = [{"theta": 0.5}, {"theta": 1.5}]
    job = job_submit(owner=operator_user, spec=JobSpec(source=rotation_qasm3(), parameter_sets=sets, bitstrings=True))

    copy = job_rerun(job=job, actor=operator_user)

    assert (copy.parameter_sets, copy.sweep_size, copy.bitstrings) == (sets, 2, True)


@pytest.mark.django_db
def test_stream_snapshot_reads_no_large_columns(operator_user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.jobs.consumers import jobs_snapshot
    from apps.jobs.kinds import job_kind

    sets = [{"theta": 0.5}] * 3
    job = job_submit(owner=operator_user, spec=JobSpec(source=rotation_qasm3(), parameter_sets=sets))

    with CaptureQueriesContext(connection) as queries:
        (message,) = jobs_snapshot(job_kind("quantum"), operator_user)

    assert (message["id"], message["status"]) == (job.pk, "queued")
    read = " ".join(query["sql"] for query in queries.captured_queries)
    for column in ("source", "results", "parameter_sets", "counts"):
        assert f'"quantum_quantumjob"."{column}"' not in read
