"""Estimator jobs: expectation values of Pauli observables, checked against Aer's EstimatorV2 and exact values."""

import math
import time

import numpy as np
import pytest
from qiskit import qasm3
from qiskit.quantum_info import SparsePauliOp, Statevector
from qiskit_aer import AerSimulator
from qiskit_aer.noise import NoiseModel, depolarizing_error
from qiskit_aer.primitives import EstimatorV2

from apps.jobs.choices import JobStatus
from apps.quantum.models import QuantumJob
from apps.quantum.primitives import DEFAULT_PRECISION, MAX_OBSERVABLES, MAX_TERMS
from apps.quantum.services import JobSpec, job_submit
from tests.helpers import api_error, job_wait
from tests.quantum.job_streams import JOBS_URL, submitted_job_statuses
from tests.quantum_circuits import bell_rotation_qasm3, ghz_qasm3

OBSERVABLES = [[["ZZ", 1.0]], [["IZ", 1.0], ["XX", 0.5]], [["YY", -2.0]]]
FIXED_BELL = bell_rotation_qasm3().replace("input float theta;\n", "").replace("theta", "0.7")


@pytest.fixture
def operator_client(api_client, operator_user):
    api_client.force_authenticate(operator_user)
    return api_client


def _exact(source: str, theta: float | None, observables) -> list[float]:
    circuit = qasm3.loads(source)
    circuit.remove_final_measurements()
    if theta is not None:
        circuit = circuit.assign_parameters({"theta": theta})
    state = Statevector(circuit)
    return [float(state.expectation_value(SparsePauliOp.from_list(terms)).real) for terms in observables]


def _assert_within_errors(entry: dict, exact: list[float]) -> None:
    for value, error, expected in zip(entry["expectation_values"], entry["std_errors"], exact, strict=True):
        assert error > 0
        assert abs(value - expected) <= 5 * error + 1e-9, (entry, exact)


# --- Running on a real worker


def test_estimator_job_matches_aer_estimator_and_exact_values(celery_worker, operator_user):
    spec = JobSpec(source=FIXED_BELL, primitive="estimator", observables=OBSERVABLES, precision=0.005, seed=21)
    job = job_submit(owner=operator_user, spec=spec)

    job_wait(job, [JobStatus.COMPLETED, JobStatus.FAILED])

    assert job.status == JobStatus.COMPLETED, job.error
    (entry,) = job.results
    assert entry["parameters"] == {}
    assert entry["std_errors"] == [0.005] * 3
    _assert_within_errors(entry, _exact(FIXED_BELL, None, OBSERVABLES))
    # The same seed through Aer's EstimatorV2 directly gives the same values.
    circuit = qasm3.loads(FIXED_BELL)
    estimator = EstimatorV2(options={"run_options": {"seed_simulator": 21, "shots": job.shots}})
    pub = (circuit, [SparsePauliOp.from_list(terms) for terms in OBSERVABLES], None, 0.005)
    direct = estimator.run([pub]).result()[0].data
    assert entry["expectation_values"] == pytest.approx(list(direct.evs), abs=1e-12)
    assert job.counts is None


def test_estimator_sweep_follows_the_angle_within_the_reported_errors(celery_worker, operator_user):
    angles = [0.0, 0.5, math.pi / 2, 2.5, math.pi]
    spec = JobSpec(
        source=bell_rotation_qasm3(measure=True),  # the final measurements are dropped
        primitive="estimator",
        observables=OBSERVABLES,
        parameter_sets=[{"theta": angle} for angle in angles],
    )
    job = job_submit(owner=operator_user, spec=spec)

    job_wait(job, [JobStatus.COMPLETED, JobStatus.FAILED])

    assert job.status == JobStatus.COMPLETED, job.error
    assert [entry["parameters"]["theta"] for entry in job.results] == angles
    for angle, entry in zip(angles, job.results, strict=True):
        assert entry["std_errors"] == [DEFAULT_PRECISION] * 3
        _assert_within_errors(entry, _exact(bell_rotation_qasm3(), angle, OBSERVABLES))


def test_uniform_noise_applies_to_the_estimator(celery_worker, operator_user):
    noise = {"depolarizing_1q": 0.02, "depolarizing_2q": 0.1}
    spec = JobSpec(
        source=FIXED_BELL, primitive="estimator", observables=[[["ZZ", 1.0]]], precision=0.001, seed=5, noise=noise
    )
    job = job_submit(owner=operator_user, spec=spec)

    job_wait(job, [JobStatus.COMPLETED, JobStatus.FAILED])

    assert job.status == JobStatus.COMPLETED, job.error
    (value,) = job.results[0]["expectation_values"]
    assert value < 1 - 20 * 0.001  # a perfect Bell pair gives exactly 1
    model = NoiseModel()
    model.add_all_qubit_quantum_error(depolarizing_error(0.02, 1), ["ry"])
    model.add_all_qubit_quantum_error(depolarizing_error(0.1, 2), ["cx"])
    estimator = EstimatorV2.from_backend(
        AerSimulator(noise_model=model), options={"run_options": {"seed_simulator": 5, "shots": job.shots}}
    )
    direct = estimator.run([(qasm3.loads(FIXED_BELL), SparsePauliOp("ZZ"), None, 0.001)]).result()[0].data
    assert value == pytest.approx(float(direct.evs), abs=0.02)


def test_estimator_job_runs_end_to_end_through_the_api(celery_worker, operator_client):
    sets = [{"theta": float(angle)} for angle in np.linspace(0, math.pi, 9)]
    body = {
        "source": bell_rotation_qasm3(),
        "primitive": "estimator",
        "observables": [[["IZ", 1.0]], [["XX", 1.0]]],
        "precision": 0.02,
        "parameter_sets": sets,
    }
    response = operator_client.post(JOBS_URL, body, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["primitive"], created["precision"], created["observables"]) == (
        "estimator",
        0.02,
        [[["IZ", 1.0]], [["XX", 1.0]]],
    )

    deadline = time.monotonic() + 60
    job = created
    while job["status"] not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.05)
        job = operator_client.get(f"{JOBS_URL}{created['id']}/").json()

    assert job["status"] == "completed", job["error"]
    assert len(job["results"]) == 9
    for values, entry in zip(sets, job["results"], strict=True):
        assert entry["parameters"] == values
        theta = values["theta"]
        _assert_within_errors(entry, [math.cos(theta), math.sin(theta)])


# --- Refusals


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        ({}, "observables", f"An estimator job needs 1 to {MAX_OBSERVABLES} observables"),
        ({"observables": []}, "observables", f"An estimator job needs 1 to {MAX_OBSERVABLES} observables"),
        (
            {"observables": [[["ZZ", 1]]] * (MAX_OBSERVABLES + 1)},
            "observables",
            f"An estimator job needs 1 to {MAX_OBSERVABLES} observables, each a list of [pauli_string, coefficient] "
            f'pairs (e.g. [[["ZZ", 1.0], ["XI", 0.5]]]); got {MAX_OBSERVABLES + 1}.',
        ),
        (
            {"observables": [[["ZZ", 1]], [["ZZ", 1]] * (MAX_TERMS + 1)]},
            "observables",
            f"Observable 1 must be a list of 1 to {MAX_TERMS} [pauli_string, coefficient] pairs; got {MAX_TERMS + 1}",
        ),
        (
            {"observables": [[["ZA", 1]]]},
            "observables",
            "Observable 0: 'ZA' is not a Pauli string; use only the letters I, X, Y and Z.",
        ),
        (
            {"observables": [[["zz", 1]]]},
            "observables",
            "Observable 0: 'zz' is not a Pauli string",
        ),
        (
            {"observables": [[["ZZ", 1]], [["ZZZ", 1]]]},
            "observables",
            "Observable 1: 'ZZZ' has 3 letters; the circuit has 2 qubits (one letter per qubit, the rightmost",
        ),
        (
            {"observables": [[["ZZ", "1j"]]]},
            "observables",
            "Observable 0: the coefficient of ZZ must be a finite real number; got '1j'.",
        ),
        (
            {"observables": [[["ZZ", [1, 1]]]]},
            "observables",
            "Observable 0: the coefficient of ZZ must be a finite real number; got [1, 1].",
        ),
        ({"observables": [["ZZ", 1]]}, "observables", "Observable 0: each term is [pauli_string, coefficient]"),
        ({"observables": [[["ZZ", 1]]], "precision": 0}, "precision", "precision must be a number above 0"),
        ({"observables": [[["ZZ", 1]]], "precision": -0.1}, "precision", "precision must be a number above 0"),
        (
            {"observables": [[["ZZ", 1]]], "bitstrings": True},
            "bitstrings",
            'bitstrings applies to "primitive": "sampler" jobs only.',
        ),
        (
            {"observables": [[["ZZ", 1]]], "measure_all": True},
            "measure_all",
            "An estimator job measures no qubits; leave measure_all false.",
        ),
        (
            {"observables": [[["ZZ", 1]]], "method": "extended_stabilizer"},
            "method",
            "The extended_stabilizer method cannot compute expectation values",
        ),
        (
            {
                "observables": [[["ZZ", 1]]],
                "source": ghz_qasm3(2).replace("c = measure q;", "c[0] = measure q[0];\nh q[0];\nc[1] = measure q[1];"),
            },
            "source",
            "An estimator job takes the state before measurement: this circuit measures qubits before its end.",
        ),
    ],
    ids=[
        "no-observables",
        "empty",
        "too-many-observables",
        "too-many-terms",
        "not-pauli",
        "lower-case",
        "wrong-length",
        "complex-coefficient",
        "list-coefficient",
        "term-not-a-pair",
        "zero-precision",
        "negative-precision",
        "bitstrings",
        "measure-all",
        "extended-stabilizer",
        "mid-circuit-measurement",
    ],
)
def test_invalid_estimator_job_is_refused_naming_the_problem(operator_client, body, field, expected):
    body = {"source": FIXED_BELL, "primitive": "estimator", **body}
    response = operator_client.post(JOBS_URL, body, format="json")

    error = api_error(response, 400, "invalid")
    assert error["errors"][field][0].startswith(expected), error
    assert not QuantumJob.objects.exists()


@pytest.mark.django_db
def test_estimator_circuit_needs_no_measurements_and_precision_defaults(operator_client):
    body = {"source": FIXED_BELL, "primitive": "estimator", "observables": [[["ZZ", 1]]]}
    response = operator_client.post(JOBS_URL, body, format="json")

    assert response.status_code == 201, response.content
    job = response.json()
    assert (job["precision"], job["parameter_sets"], job["sweep_size"]) == (DEFAULT_PRECISION, None, 1)


def test_estimator_job_streams_its_statuses_and_its_results_are_read_when_it_completes(
    celery_worker, client, operator_client, operator_user
):
    body = {"source": FIXED_BELL, "primitive": "estimator", "observables": [[["ZZ", 1.0]], [["IZ", 1.0]]]}
    job_id, statuses = submitted_job_statuses(client, operator_client, operator_user, body)

    assert statuses == [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.COMPLETED]
    job = operator_client.get(f"{JOBS_URL}{job_id}/").json()
    (entry,) = job["results"]
    _assert_within_errors(entry, _exact(FIXED_BELL, None, [[["ZZ", 1.0]], [["IZ", 1.0]]]))
