"""The simulator child process: reads simulation requests on stdin, writes results on stdout.

It keeps its simulators, noise models and pass managers between requests, so a
job pays only for parsing and simulating. The worker kills this process to stop
a simulation (cancel, timeout) and starts a new one for the next job. It does
not import Django.
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from functools import cache

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import generate_preset_pass_manager
from qiskit_aer import AerSimulator
from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error
from qiskit_aer.primitives import EstimatorV2

from apps.quantum.circuits import circuit_parse
from apps.quantum.devices import device_backend

ONE_QUBIT_GATES = ["id", "x", "y", "z", "h", "s", "sdg", "t", "tdg", "sx", "sxdg", "rx", "ry", "rz", "p", "u", "r"]
ONE_QUBIT_GATES += ["u1", "u2", "u3"]
TWO_QUBIT_GATES = ["cx", "cy", "cz", "swap", "ch", "cp", "crx", "cry", "crz", "cu", "cu1", "cu3", "ecr"]
TWO_QUBIT_GATES += ["rxx", "ryy", "rzz", "rzx", "iswap", "dcx"]
# Up to this size the parameter sets of a sweep run side by side, one per core, rather than one after another
# on all cores (measured: 100 sets of a 5-qubit circuit, 190 -> 90 ms); larger states would multiply memory.
PARALLEL_SETS_MAX_QUBITS = 16


@cache
def simulator(
    method: str, noise: tuple[float, float, float] | None, device: str | None = None, processor: str = "cpu"
) -> AerSimulator:
    # Aer names its processors "CPU" and "GPU" (the GPU one only in the CUDA build, qiskit-aer-gpu).
    options = {"method": method, "device": processor.upper()}
    if device:
        # The device's noise model, coupling map and basis, from its calibration snapshot.
        return AerSimulator.from_backend(device_backend(device), **options)
    return AerSimulator(noise_model=noise_model(noise) if noise else None, **options)


@cache
def supported_operations(method: str) -> frozenset[str]:
    return frozenset(AerSimulator(method=method).target.operation_names)


@cache
def pass_manager(method: str):
    return generate_preset_pass_manager(optimization_level=1, target=AerSimulator(method=method).target)


@cache
def device_pass_manager(method: str, device: str):
    return generate_preset_pass_manager(optimization_level=1, backend=simulator(method, None, device))


def noise_model(noise: tuple[float, float, float]) -> NoiseModel:
    one_qubit, two_qubit, readout = noise
    model = NoiseModel()
    if one_qubit:
        model.add_all_qubit_quantum_error(depolarizing_error(one_qubit, 1), ONE_QUBIT_GATES)
    if two_qubit:
        model.add_all_qubit_quantum_error(depolarizing_error(two_qubit, 2), TWO_QUBIT_GATES)
    if readout:
        model.add_all_qubit_readout_error(ReadoutError([[1 - readout, readout], [readout, 1 - readout]]))
    return model


def runnable(circuit: QuantumCircuit, method: str, device: str | None = None) -> QuantumCircuit:
    if device:
        # A device runs its own basis gates between coupled qubits only, whatever gates the circuit has.
        return device_pass_manager(method, device).run(circuit)
    # Aer runs circuits of its own operations as they are; only the others are transpiled.
    if set(circuit.count_ops()) <= supported_operations(method):
        return circuit
    return pass_manager(method).run(circuit)


def simulate(request: dict) -> list[dict]:
    """Run every circuit of the request in one simulator call; one result per circuit."""
    circuits = []
    for source, version, measure_all in request["circuits"]:
        circuit = circuit_parse(source, version)
        if measure_all:
            circuit.measure_all()
        circuits.append(runnable(circuit, request["method"], request.get("device")))
    backend = simulator(request["method"], request["noise"], request.get("device"), request.get("processor", "cpu"))
    options = {"shots": request["shots"]}
    if request["seed"] is not None:
        options["seed_simulator"] = request["seed"]
    if len(circuits) > 1:
        # Small circuits run side by side on every core (measured: 1.1 -> 0.76 ms per GHZ-5 job).
        options["max_parallel_experiments"] = 0
    started = time.perf_counter()
    result = backend.run(circuits, **options).result()
    elapsed = time.perf_counter() - started
    outcomes = []
    for index, experiment in enumerate(result.results):
        if experiment.success:
            outcomes.append({"counts": dict(result.get_counts(index)), "seconds": elapsed / len(circuits)})
        else:
            outcomes.append({"error": experiment.status or "the simulator reported a failure"})
    return outcomes


def primitive_simulate(request: dict) -> list[dict]:
    """Run one job's parameter sets in one simulator call: counts (sampler) or expectation values (estimator).

    Sampler sweeps go to AerSimulator.run with parameter binds rather than SamplerV2: measured here on a 5-qubit
    circuit with 100 sets of 1,024 shots, 80-100 ms against 165-195 ms for SamplerV2, which keeps every shot.
    """
    ((source, version, measure_all),) = request["circuits"]
    circuit = circuit_parse(source, version)
    estimator = request["primitive"] == "estimator"
    if estimator:
        circuit.remove_final_measurements()
    elif measure_all:
        circuit.measure_all()
    device = request.get("device")
    circuit = runnable(circuit, request["method"], device)
    sets = request["parameter_sets"] or [{}]
    values = np.array([[values[parameter.name] for parameter in circuit.parameters] for values in sets], dtype=float)
    backend = simulator(request["method"], request["noise"], device, request.get("processor", "cpu"))
    started = time.perf_counter()
    run = _estimate if estimator else _sample
    entries = run(backend, circuit, values, request)
    elapsed = time.perf_counter() - started
    for entry, parameters in zip(entries, sets, strict=True):
        entry["parameters"] = parameters
    outcome = {"results": entries, "seconds": elapsed}
    if not estimator and request["parameter_sets"] is None:
        outcome["counts"] = entries[0]["counts"]  # a job without a sweep keeps today's counts field
    return [outcome]


def _sample(backend: AerSimulator, circuit: QuantumCircuit, values, request: dict) -> list[dict]:
    options = {"shots": request["shots"], "memory": request["bitstrings"], **_parallel_sets(circuit, values)}
    if request["seed"] is not None:
        options["seed_simulator"] = request["seed"]
    if circuit.parameters:
        options["parameter_binds"] = [{parameter: values[:, i] for i, parameter in enumerate(circuit.parameters)}]
    result = backend.run(circuit, **options).result()
    entries = []
    for index, experiment in enumerate(result.results):
        if not experiment.success:
            raise RuntimeError(f"parameter set {index}: {experiment.status or 'the simulator reported a failure'}")
        entry = {"counts": dict(result.get_counts(index))}
        if request["bitstrings"]:
            entry["bitstrings"] = result.get_memory(index)
        entries.append(entry)
    return entries


def _parallel_sets(circuit: QuantumCircuit, values) -> dict:
    if len(values) > 1 and circuit.num_qubits <= PARALLEL_SETS_MAX_QUBITS:
        return {"max_parallel_experiments": 0}
    return {}


def _estimate(backend: AerSimulator, circuit: QuantumCircuit, values, request: dict) -> list[dict]:
    run_options = {"shots": request["shots"], **_parallel_sets(circuit, values)}  # shots: noise trajectories
    if request["seed"] is not None:
        run_options["seed_simulator"] = request["seed"]
    estimator = EstimatorV2.from_backend(backend, options={"run_options": run_options})
    observables = [SparsePauliOp.from_list(terms) for terms in request["observables"]]
    if circuit.layout is not None:
        # Transpiled to a device: the observables follow the circuit's qubits to the physical ones they now use.
        observables = [observable.apply_layout(circuit.layout) for observable in observables]
    if circuit.parameters:
        # (sets, 1, parameters) against (observables,): values broadcast to (sets, observables).
        pub = (circuit, observables, values[:, np.newaxis, :], request["precision"])
    else:
        pub = (circuit, [observables], None, request["precision"])
    data = estimator.run([pub]).result()[0].data
    return [
        {"expectation_values": [float(value) for value in evs], "std_errors": [float(value) for value in stds]}
        for evs, stds in zip(data.evs, data.stds, strict=True)
    ]


def serve(requests, responses) -> None:
    while True:
        try:
            request = pickle.load(requests)  # noqa: S301 (sent by the worker that started this process)
        except EOFError:
            return
        try:
            # Requests carrying a "primitive" are sweeps, estimator jobs or per-shot bitstrings: one job each.
            response = {"results": primitive_simulate(request) if "primitive" in request else simulate(request)}
        except Exception as exc:  # reported to the job, never a crash of the process
            response = {"error": f"{type(exc).__name__}: {exc}"}
        pickle.dump(response, responses, protocol=pickle.HIGHEST_PROTOCOL)
        responses.flush()


def main() -> None:
    # Results go to the original stdout; anything a library prints goes to stderr instead.
    responses = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, responses)


if __name__ == "__main__":
    main()
