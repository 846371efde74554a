"""Quantum jobs benchmark: the portal against bare qiskit-aer, measured in the same run.

Starts the portal (`runportal --workers 2`) and one separate `celery worker` (one process) on a
scratch PostgreSQL database and Redis database 12, then:

(a) 1,000 GHZ-5 jobs at 1,024 shots submitted through the batch API, timed until
    a websocket client has received all 1,000 "completed" updates (so results
    are stored and events published), against bare AerSimulator running the
    same circuits one by one in one process (parse + run). Target ratio >= 0.6.
(b) One 24-qubit quantum-volume job through the portal (submit to completed
    update) against bare Aer running the same circuit. Target ratio <= 1.05.
(d) A sweep of 100 parameter sets of a 5-qubit OpenQASM 3 circuit at 1,024 shots: one
    sweep job against 100 separate jobs (the parameter written into each program) through
    the batch API, both timed until the completed updates arrived; and against bare Aer
    (one run with parameter binds, and 100 runs). Target: the sweep job >= 2x the 100 jobs
    (which already share simulator calls of up to 50 circuits).
(c) Status-event latency, from the worker's state change (the job's
    ``updated_at``) to receipt by each of 500 connected websocket clients
    (in 5 client processes), spread over the two web processes; also how long
    all 500 took to connect. Target: all connected within 60 s, p95 <= 50 ms.

Missed targets are reported, not fatal; errors exit non-zero.

    .venv/bin/python benchmarks/quantum.py
    QUANTUM_BENCH_CLIENTS=4 .venv/bin/python benchmarks/quantum.py   # (c) with fewer sockets
    QUANTUM_BENCH_PARTS=d .venv/bin/python benchmarks/quantum.py      # only some of (a) to (d)
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.portal import Api, percentile, portal_running, verdict, wait_for_completed, ws_connect
from tests.quantum_circuits import ghz_qasm2

# Overridable so that benchmarks of parallel checkouts do not share a scratch database or Redis database.
DATABASE = os.environ.get("QUANTUM_BENCH_DATABASE", "opsdeck_bench_quantum")
REDIS_URL = os.environ.get("QUANTUM_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
JOBS = 1000
BATCH = 500
SHOTS = 1024
QV_QUBITS, QV_DEPTH, QV_SEED = 24, 10, 11
CLIENTS = int(os.environ.get("QUANTUM_BENCH_CLIENTS", "500"))
CLIENT_PROCESSES = 5
WEB_PROCESSES = 2
CONNECT_TIMEOUT = 60
PARTS = os.environ.get("QUANTUM_BENCH_PARTS", "abcd")
SWEEP_SETS = 100
TARGET_SWEEP_GAIN = 2
LATENCY_JOBS = 20

TARGET_THROUGHPUT_RATIO = 0.6
TARGET_QV_RATIO = 1.05
TARGET_LATENCY_P95_MS = 50


# --- Portal clients


def job_wait_completed(job_id: int, timeout: float = 120) -> None:
    from apps.quantum.models import QuantumJob

    deadline = time.monotonic() + timeout
    while not QuantumJob.objects.filter(pk=job_id, status="completed").exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} did not complete within {timeout} s")
        time.sleep(0.1)


# --- (a) throughput


def bare_throughput(source: str) -> float:
    import qiskit.qasm2
    from qiskit_aer import AerSimulator

    simulator = AerSimulator()
    started = time.perf_counter()
    for _ in range(JOBS):
        circuit = qiskit.qasm2.loads(source, custom_instructions=qiskit.qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
        simulator.run(circuit, shots=SHOTS).result().get_counts()
    return JOBS / (time.perf_counter() - started)


async def portal_throughput(api: Api, source: str) -> float:
    socket = await ws_connect(api.port, api.token)
    loop = asyncio.get_running_loop()
    item = {"source": source, "shots": SHOTS}
    started = time.perf_counter()
    ids: set[int] = set()
    for _ in range(JOBS // BATCH):
        response = await loop.run_in_executor(None, api.post, "/api/v1/quantum/jobs/batch/", {"jobs": [item] * BATCH})
        ids.update(response["ids"])
    await wait_for_completed(socket, ids, timeout=600)
    elapsed = time.perf_counter() - started
    await socket.close()
    return JOBS / elapsed


# --- (b) one large job


def quantum_volume_source() -> str:
    import qiskit.qasm2
    from qiskit import transpile
    from qiskit.circuit.library import quantum_volume

    circuit = quantum_volume(QV_QUBITS, QV_DEPTH, seed=QV_SEED)
    circuit.measure_all()
    return qiskit.qasm2.dumps(transpile(circuit, basis_gates=["u3", "cx"], optimization_level=0))


def bare_single(source: str) -> float:
    import qiskit.qasm2
    from qiskit_aer import AerSimulator

    started = time.perf_counter()
    circuit = qiskit.qasm2.loads(source, custom_instructions=qiskit.qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
    AerSimulator(method="statevector").run(circuit, shots=SHOTS).result().get_counts()
    return time.perf_counter() - started


async def portal_single(api: Api, source: str) -> float:
    socket = await ws_connect(api.port, api.token)
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    job = await loop.run_in_executor(
        None, api.post, "/api/v1/quantum/jobs/", {"source": source, "shots": SHOTS, "method": "statevector"}
    )
    await wait_for_completed(socket, {job["id"]}, timeout=600)
    elapsed = time.perf_counter() - started
    await socket.close()
    return elapsed


# --- (c) event latency


async def _listen(port: int, token: str, count: int, ready) -> list[float]:
    """Open ``count`` sockets, report ready, then record each update's delay until every socket saw the jobs end."""
    sockets = await asyncio.gather(*(ws_connect(port, token) for _ in range(count)))
    ready.put(True)
    latencies: list[float] = []

    async def listen(socket) -> None:
        completed = 0
        while completed < LATENCY_JOBS:
            raw = await socket.recv()
            received = time.time()
            message = json.loads(raw)
            if message.get("type") != "job.update":
                continue
            latencies.append((received - datetime.fromisoformat(message["updated_at"]).timestamp()) * 1000)
            if message["status"] == "completed":
                completed += 1

    await asyncio.wait_for(asyncio.gather(*(listen(socket) for socket in sockets)), 120)
    await asyncio.gather(*(socket.close() for socket in sockets))
    return latencies


def _client_process(port: int, token: str, count: int, ready, results) -> None:
    results.put(asyncio.run(_listen(port, token, count, ready)))


def event_latency(api: Api, source: str) -> tuple[float, list[float]]:
    """Clients in several processes, as real watchers would be: one event loop does not read 500 sockets at once.

    Returns how long until every socket had its snapshot, and every delivery's latency."""
    from django.db import connections

    connections.close_all()  # the children are forked
    context = multiprocessing.get_context("fork")
    ready, results = context.Queue(), context.Queue()
    per_process = CLIENTS // CLIENT_PROCESSES
    processes = [
        context.Process(target=_client_process, args=(api.port, api.token, per_process, ready, results))
        for _ in range(CLIENT_PROCESSES)
    ]
    started = time.perf_counter()
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=3 * CONNECT_TIMEOUT)
    connected_in = time.perf_counter() - started
    for _ in range(LATENCY_JOBS):
        api.post("/api/v1/quantum/jobs/", {"source": source, "shots": SHOTS})
        time.sleep(0.05)
    latencies = [value for _ in processes for value in results.get(timeout=180)]
    for process in processes:
        process.join(30)
    return connected_in, sorted(latencies)


# --- (d) a sweep as one job


def sweep_source(theta: str = "theta") -> str:
    """Five qubits: a GHZ chain with ry(theta) and rz(theta / 2) layers; declares theta when it is not bound."""
    lines = ["OPENQASM 3.0;", 'include "stdgates.inc";']
    if theta == "theta":
        lines.append("input float theta;")
    lines += ["qubit[5] q;", "bit[5] c;", "h q[0];"]
    for i in range(4):
        lines += [f"ry({theta}) q[{i + 1}];", f"cx q[{i}], q[{i + 1}];", f"rz({theta} / 2) q[{i}];"]
    lines.append("c = measure q;")
    return "\n".join(lines) + "\n"


def sweep_angles() -> list[float]:
    return [3.14159 * index / (SWEEP_SETS - 1) for index in range(SWEEP_SETS)]


def bare_sweep() -> tuple[float, float]:
    """Seconds for bare Aer: one run with parameter binds, and one run per set (parse each)."""
    import qiskit.qasm3
    from qiskit_aer import AerSimulator

    simulator = AerSimulator()
    qiskit.qasm3.loads(sweep_source())  # the OpenQASM 3 parser's first use costs seconds of imports
    started = time.perf_counter()
    circuit = qiskit.qasm3.loads(sweep_source())
    (theta,) = circuit.parameters
    binds = [{theta: sweep_angles()}]
    # With the portal's own option for small sweeps (sets side by side), so that bare Aer is at its best.
    result = simulator.run(circuit, shots=SHOTS, parameter_binds=binds, max_parallel_experiments=0).result()
    [result.get_counts(index) for index in range(SWEEP_SETS)]
    one_call = time.perf_counter() - started
    started = time.perf_counter()
    for angle in sweep_angles():
        simulator.run(qiskit.qasm3.loads(sweep_source(repr(angle))), shots=SHOTS).result().get_counts()
    return one_call, time.perf_counter() - started


async def portal_sweep(api: Api) -> tuple[float, float]:
    """Seconds through the portal: one sweep job, and 100 separate jobs in one batch."""
    socket = await ws_connect(api.port, api.token)
    loop = asyncio.get_running_loop()
    body = {"source": sweep_source(), "shots": SHOTS, "parameter_sets": [{"theta": a} for a in sweep_angles()]}
    started = time.perf_counter()
    job = await loop.run_in_executor(None, api.post, "/api/v1/quantum/jobs/", body)
    await wait_for_completed(socket, {job["id"]}, timeout=600)
    one_job = time.perf_counter() - started
    items = [{"source": sweep_source(repr(angle)), "shots": SHOTS} for angle in sweep_angles()]
    started = time.perf_counter()
    response = await loop.run_in_executor(None, api.post, "/api/v1/quantum/jobs/batch/", {"jobs": items})
    await wait_for_completed(socket, set(response["ids"]), timeout=600)
    separate = time.perf_counter() - started
    await socket.close()
    return one_job, separate


def main() -> int:
    environment = {"QUANTUM_MAX_QUEUED_PER_USER": str(JOBS * 2)}
    with portal_running(
        database=DATABASE, redis_url=REDIS_URL, queue="quantum", environment=environment, web_processes=WEB_PROCESSES
    ) as portal:
        api = portal.api
        ghz = ghz_qasm2(5)
        print("Quantum jobs: portal (web + 1 worker process, PostgreSQL, Redis) against bare qiskit-aer")
        # The first job starts the worker's simulator process.
        warm = api.post("/api/v1/quantum/jobs/", {"source": ghz, "shots": SHOTS})
        job_wait_completed(warm["id"])

        met = {}
        if "a" in PARTS or "b" in PARTS or "c" in PARTS:
            met.update(_parts_abc(api, ghz))
        if "d" in PARTS:
            # Both sides warmed up first: the OpenQASM 3 parser takes seconds to import, in each process.
            warm = {"source": sweep_source(), "shots": SHOTS, "parameter_sets": [{"theta": 0.5}] * 2}
            job_wait_completed(api.post("/api/v1/quantum/jobs/", warm)["id"])
            job_wait_completed(api.post("/api/v1/quantum/jobs/", {"source": sweep_source("0.5"), "shots": 8})["id"])
            bare_one, bare_each = bare_sweep()
            portal_one, portal_each = asyncio.run(portal_sweep(api))
            gain = portal_each / portal_one
            print(f"  (d) a sweep of {SWEEP_SETS} parameter sets, 5 qubits x {SHOTS} shots, until completed updates")
            print(f"      bare Aer, one run with parameter binds   {bare_one * 1000:8.1f} ms")
            print(f"      bare Aer, {SWEEP_SETS} runs                     {bare_each * 1000:8.1f} ms")
            print(f"      portal, one sweep job                   {portal_one * 1000:8.1f} ms")
            print(f"      portal, {SWEEP_SETS} jobs (batch API)          {portal_each * 1000:8.1f} ms")
            line = f"  sweep gain (100 jobs / 1 job) {gain:6.1f}x    target >= {TARGET_SWEEP_GAIN}x"
            met["d"] = (line, gain >= TARGET_SWEEP_GAIN)
        print("Summary")
        for line, ok in met.values():
            print(f"{line}   {verdict(ok)}")
    return 0


def _parts_abc(api: Api, ghz: str) -> dict[str, tuple[str, bool]]:
    met = {}
    if "a" in PARTS:
        bare_rate = bare_throughput(ghz)
        portal_rate = asyncio.run(portal_throughput(api, ghz))
        ratio_a = portal_rate / bare_rate
        print(f"  (a) {JOBS} GHZ-5 jobs x {SHOTS} shots, batch API, until every completed update arrived")
        print(f"      bare Aer one by one   {bare_rate:8.1f} jobs/s")
        print(f"      portal                {portal_rate:8.1f} jobs/s   ratio {ratio_a:.2f}")
        line = f"  throughput ratio     {ratio_a:6.2f}     target >= {TARGET_THROUGHPUT_RATIO}  "
        met["a"] = (line, ratio_a >= TARGET_THROUGHPUT_RATIO)
    if "b" in PARTS:
        qv = quantum_volume_source()
        bare_qv = bare_single(qv)
        portal_qv = asyncio.run(portal_single(api, qv))
        ratio_b = portal_qv / bare_qv
        print(f"  (b) one {QV_QUBITS}-qubit quantum-volume job (depth {QV_DEPTH}), statevector")
        print(f"      bare Aer              {bare_qv:8.2f} s")
        print(f"      portal                {portal_qv:8.2f} s   ratio {ratio_b:.3f}")
        met["b"] = (
            f"  24-qubit QV ratio    {ratio_b:6.3f}     target <= {TARGET_QV_RATIO} ",
            ratio_b <= TARGET_QV_RATIO,
        )
    if "c" in PARTS:
        connected_in, latencies = event_latency(api, ghz)
        p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
        print(
            f"  (c) status-event latency, state change -> {CLIENTS} sockets, {CLIENT_PROCESSES} client processes, "
            f"{WEB_PROCESSES} web processes; all connected in {connected_in:.1f} s"
        )
        worst = latencies[-1]
        print(f"      {len(latencies):,} deliveries  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  max {worst:.1f} ms")
        line = f"  event latency p95    {p95:6.1f} ms  target <= {TARGET_LATENCY_P95_MS} ms"
        met["c"] = (line, p95 <= TARGET_LATENCY_P95_MS)
        line = f"  {CLIENTS} sockets connected {connected_in:5.1f} s   target <= {CONNECT_TIMEOUT} s"
        met["connect"] = (line, connected_in <= CONNECT_TIMEOUT)
    return met


if __name__ == "__main__":
    sys.exit(main())
