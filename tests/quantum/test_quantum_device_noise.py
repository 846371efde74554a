"""Device noise: the calibrated noise, coupling map and basis of a device's snapshot (qiskit-ibm-runtime's fake
backends), on a real worker and real qiskit-aer."""

import pytest
from django.test import Client

from apps.jobs.choices import JobStatus
from apps.quantum.circuits import circuit_parse
from apps.quantum.devices import device, device_backend
from apps.quantum.services import JobSpec, job_submit
from apps.quantum.simulator_process import runnable
from tests.helpers import api_error, job_wait
from tests.quantum_circuits import ghz_qasm2

JOBS_URL = "/api/v1/quantum/jobs/"
BACKENDS_URL = "/api/v1/quantum/backends/"
# Five qubits on a line (0-1-2-3-4): two-qubit gates between distant qubits need swaps.
DEVICE = "fake_manila"
# Gates fake_manila does not have (h, ccx, swap) between qubits it does not couple (0 and 4).
FAR_APART = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[5];
creg c[5];
h q[0];
cx q[0],q[4];
ccx q[0],q[4],q[2];
swap q[1],q[3];
measure q -> c;
"""


@pytest.fixture
def operator_client(api_client, operator_user):
    api_client.force_authenticate(operator_user)
    return api_client


def _ghz_fidelity(counts: dict[str, int], qubits: int) -> float:
    return (counts.get("0" * qubits, 0) + counts.get("1" * qubits, 0)) / sum(counts.values())


def test_device_job_runs_with_the_devices_noise_on_a_worker(celery_worker, operator_user):
    noisy = job_submit(
        owner=operator_user, spec=JobSpec(source=ghz_qasm2(4), shots=4000, seed=11, noise={"device": DEVICE})
    )
    ideal = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(4), shots=4000, seed=11))

    for job in (noisy, ideal):
        job_wait(job, [JobStatus.COMPLETED, JobStatus.FAILED], timeout=120)

    assert noisy.status == ideal.status == JobStatus.COMPLETED, noisy.error
    assert noisy.device == DEVICE
    assert noisy.noise == {"device": DEVICE}
    assert _ghz_fidelity(ideal.counts, 4) == 1.0
    # A real device's errors: most shots still land on the two GHZ outcomes, but not all of them.
    assert 0.5 < _ghz_fidelity(noisy.counts, 4) < 0.99
    assert len(noisy.counts) > 2
    assert sum(noisy.counts.values()) == 4000


def test_device_circuit_is_transpiled_to_the_devices_basis_and_coupling_map():
    backend = device_backend(DEVICE)
    coupled = set(backend.coupling_map.get_edges())

    run = runnable(circuit_parse(FAR_APART, 2), "automatic", DEVICE)

    gates = set(run.count_ops()) - {"measure", "barrier"}
    assert gates <= set(device(DEVICE).basis_gates), gates
    assert not gates & {"h", "ccx", "swap"}
    for instruction in run.data:
        if instruction.operation.num_qubits == 2:
            pair = tuple(run.find_bit(qubit).index for qubit in instruction.qubits)
            assert pair in coupled, f"{instruction.operation.name} on {pair}, not coupled on {DEVICE}"


def test_device_job_with_gates_the_device_lacks_completes(celery_worker, operator_user):
    job = job_submit(owner=operator_user, spec=JobSpec(source=FAR_APART, shots=500, noise={"device": DEVICE}))

    job_wait(job, [JobStatus.COMPLETED, JobStatus.FAILED], timeout=120)

    assert job.status == JobStatus.COMPLETED, job.error
    assert sum(job.counts.values()) == 500


def test_device_and_rates_together_are_refused(operator_client):
    noise = {"device": DEVICE, "depolarizing_1q": 0.01}
    response = operator_client.post(JOBS_URL, {"source": ghz_qasm2(3), "noise": noise}, format="json")

    detail = api_error(response, 400, "invalid")["errors"]["noise"][0]
    assert "not both" in detail
    assert "depolarizing_1q" in detail


def test_unknown_device_is_refused_with_some_names_and_where_to_find_all(operator_client):
    response = operator_client.post(JOBS_URL, {"source": ghz_qasm2(3), "noise": {"device": "fake_nowhere"}}, "json")

    detail = api_error(response, 400, "invalid")["errors"]["noise"][0]
    assert "'fake_nowhere'" in detail
    assert "fake_manila" in detail
    assert BACKENDS_URL in detail


def test_circuit_larger_than_the_device_is_refused_naming_both_counts(operator_client):
    response = operator_client.post(JOBS_URL, {"source": ghz_qasm2(7), "noise": {"device": DEVICE}}, format="json")

    detail = api_error(response, 400, "invalid")["errors"]["source"][0]
    assert "7 qubits" in detail
    assert f"{DEVICE} has only 5" in detail


def test_stabilizer_method_cannot_simulate_device_noise(operator_client):
    body = {"source": ghz_qasm2(3), "method": "stabilizer", "noise": {"device": DEVICE}}

    detail = api_error(operator_client.post(JOBS_URL, body, format="json"), 400, "invalid")["errors"]["method"][0]
    assert "cannot simulate a device's noise" in detail


def test_api_job_page_and_admin_show_the_device(operator_client, operator_user, admin_client):
    response = operator_client.post(JOBS_URL, {"source": ghz_qasm2(3), "noise": {"device": DEVICE}}, format="json")
    assert response.status_code == 201, response.content
    created = response.json()

    assert created["noise"] == {"device": DEVICE}
    assert created["queue"] == "quantum"
    assert created["estimated_seconds"] > 0
    admin_page = admin_client.get(f"/admin/quantum/quantumjob/{created['id']}/change/").content.decode()
    assert f"The calibrated noise of {DEVICE}" in admin_page
    owner = Client()
    owner.force_login(operator_user)
    page = owner.get(f"/dashboard/jobs/{created['id']}/").content.decode()
    assert f"the calibrated noise of device {DEVICE}" in page


def test_backends_list_the_devices_with_qubits_and_basis_gates(operator_client):
    listed = operator_client.get(BACKENDS_URL).json()

    devices = {entry["name"]: entry for entry in listed if entry["kind"] == "device"}
    assert len(devices) > 50
    manila = devices[DEVICE]
    assert manila["num_qubits"] == 5
    assert {"cx", "rz", "sx", "x"} <= set(manila["basis_gates"])
    assert "measure" not in manila["basis_gates"]
    assert manila["coupling_map_edges"] == 8  # four links, both directions
    assert devices["fake_sherbrooke"]["num_qubits"] == 127
    assert "ecr" in devices["fake_sherbrooke"]["basis_gates"]


# q2 flipped, q0 and q4 (not coupled on fake_manila) in a Bell state: on the device the qubits are moved around.
FLIPPED_AND_BELL = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[5];
x q[2];
h q[0];
cx q[0],q[4];
"""


def test_estimator_on_a_device_measures_the_circuits_own_qubits(celery_worker, operator_user):
    # Pauli strings read right to left (q0 last): Z on q2, ZZ and XX on q0 and q4.
    observables = [[["IIZII", 1.0]], [["ZIIIZ", 1.0]], [["XIIIX", 1.0]]]
    job = job_submit(
        owner=operator_user,
        spec=JobSpec(
            source=FLIPPED_AND_BELL,
            primitive="estimator",
            observables=observables,
            precision=0.02,
            seed=5,
            noise={"device": DEVICE},
        ),
    )

    job_wait(job, [JobStatus.COMPLETED, JobStatus.FAILED], timeout=120)

    assert job.status == JobStatus.COMPLETED, job.error
    (entry,) = job.results
    flipped, zz, xx = entry["expectation_values"]
    margin = 5 * max(entry["std_errors"])  # the estimate of a value of exactly ±1 may land a little beyond it
    # Ideal values -1, +1, +1; the device's noise shrinks them a little. Observables left on the wrong physical
    # qubits would read an untouched qubit (+1 for Z) or an unentangled pair (0 for XX).
    assert -1.0 - margin <= flipped < -0.7
    assert 0.7 < zz <= 1.0 + margin
    assert 0.6 < xx <= 1.0 + margin
