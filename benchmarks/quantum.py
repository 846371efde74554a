"""Quantum jobs benchmark: the portal against bare qiskit-aer, measured in the same run.

Starts the portal (`runportal --workers 2`) and one separate `celery worker` (one process) on a
scratch PostgreSQL database and Redis database 12, then:

(a) 1,000 GHZ-5 jobs at 1,024 shots submitted through the batch API, timed until
    a websocket client has received all 1,000 "completed" updates (so results
    are stored and events published), against bare AerSimulator running the
    same circuits one by one in one process (parse + run). Target ratio >= 0.6.
(b) One 24-qubit quantum-volume job through the portal (submit to completed
    update) against bare Aer running the same circuit. Target ratio <= 1.05.
(c) Status-event latency, from the worker's state change (the job's
    ``updated_at``) to receipt by each of 500 connected websocket clients
    (in 5 client processes), spread over the two web processes; also how long
    all 500 took to connect. Target: all connected within 60 s, p95 <= 50 ms.

Missed targets are reported, not fatal; errors exit non-zero.

    .venv/bin/python benchmarks/quantum.py
    QUANTUM_BENCH_CLIENTS=4 .venv/bin/python benchmarks/quantum.py   # (c) with fewer sockets
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

DATABASE = "opsdeck_bench_quantum"
REDIS_URL = "redis://127.0.0.1:6379/12"
JOBS = 1000
BATCH = 500
SHOTS = 1024
QV_QUBITS, QV_DEPTH, QV_SEED = 24, 10, 11
CLIENTS = int(os.environ.get("QUANTUM_BENCH_CLIENTS", "500"))
CLIENT_PROCESSES = 5
WEB_PROCESSES = 2
CONNECT_TIMEOUT = 60
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

        bare_rate = bare_throughput(ghz)
        portal_rate = asyncio.run(portal_throughput(api, ghz))
        ratio_a = portal_rate / bare_rate
        print(f"  (a) {JOBS} GHZ-5 jobs x {SHOTS} shots, batch API, until every completed update arrived")
        print(f"      bare Aer one by one   {bare_rate:8.1f} jobs/s")
        print(f"      portal                {portal_rate:8.1f} jobs/s   ratio {ratio_a:.2f}")

        qv = quantum_volume_source()
        bare_qv = bare_single(qv)
        portal_qv = asyncio.run(portal_single(api, qv))
        ratio_b = portal_qv / bare_qv
        print(f"  (b) one {QV_QUBITS}-qubit quantum-volume job (depth {QV_DEPTH}), statevector")
        print(f"      bare Aer              {bare_qv:8.2f} s")
        print(f"      portal                {portal_qv:8.2f} s   ratio {ratio_b:.3f}")

        connected_in, latencies = event_latency(api, ghz)
        p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
        print(
            f"  (c) status-event latency, state change -> {CLIENTS} sockets, {CLIENT_PROCESSES} client processes, "
            f"{WEB_PROCESSES} web processes; all connected in {connected_in:.1f} s"
        )
        worst = latencies[-1]
        print(f"      {len(latencies):,} deliveries  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  max {worst:.1f} ms")

        print("Summary")
        met_a, met_b = ratio_a >= TARGET_THROUGHPUT_RATIO, ratio_b <= TARGET_QV_RATIO
        met_c = p95 <= TARGET_LATENCY_P95_MS
        print(f"  throughput ratio     {ratio_a:6.2f}     target >= {TARGET_THROUGHPUT_RATIO}     {verdict(met_a)}")
        print(f"  24-qubit QV ratio    {ratio_b:6.3f}     target <= {TARGET_QV_RATIO}    {verdict(met_b)}")
        print(f"  event latency p95    {p95:6.1f} ms  target <= {TARGET_LATENCY_P95_MS} ms   {verdict(met_c)}")
        met_connect = connected_in <= CONNECT_TIMEOUT
        connect_line = f"  {CLIENTS} sockets connected {connected_in:5.1f} s   target <= {CONNECT_TIMEOUT} s"
        print(f"{connect_line}  {verdict(met_connect)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
