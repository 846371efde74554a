"""Web throughput under load: an open-loop mix of API requests against `runportal --workers 2` and one worker.

A scratch PostgreSQL database holds 5,000 quantum jobs of one operator. For 60 s, requests are *sent on a
schedule* (open loop: a slow answer does not slow the sending, so queueing shows in the latencies, which run
from each request's scheduled time): 100 requests/s of the mix

    60 % list    GET /api/v1/quantum/jobs/?page_size=50
    30 % detail  GET /api/v1/quantum/jobs/<random id>/
    10 % submit  POST /api/v1/quantum/jobs/ (GHZ-3, 100 shots; the worker runs them)

and, besides, 10 probes/s of /health/live. Baseline, in the same run: the same open-loop client against a bare
ASGI app served by uvicorn (what the client and the machine can do at all). Throttle rates are raised by settings
for the run. Targets: 0 errors, list p95 <= 100 ms, /health/live p99 <= 50 ms. Missed targets (errors included)
are reported, not fatal.

    .venv/bin/python benchmarks/load.py
    LOAD_BENCH_RATE=50 LOAD_BENCH_SECONDS=20 .venv/bin/python benchmarks/load.py
"""

from __future__ import annotations

import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.portal import percentile, portal_running, verdict
from tests.helpers import PROJECT_DIR, free_port
from tests.quantum_circuits import ghz_qasm2

DATABASE = "opsdeck_bench_load"
REDIS_URL = "redis://127.0.0.1:6379/12"
RATE = int(os.environ.get("LOAD_BENCH_RATE", "100"))
SECONDS = int(os.environ.get("LOAD_BENCH_SECONDS", "60"))
LIVE_RATE = 10
TABLE_ROWS = 5000
WEB_PROCESSES = 2
MIX = (("list", 0.6), ("detail", 0.3), ("submit", 0.1))
CLIENT_THREADS = 64
PROBE_THREADS = 4

TARGET_LIST_P95_MS = 100
TARGET_LIVE_P99_MS = 50


class OpenLoopClient:
    """Sends each request at its scheduled time from a pool of keep-alive connections; records latency from the
    scheduled time, status and kind."""

    def __init__(self, port: int, token: str = ""):
        self.port, self.token = port, token
        self.local = threading.local()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)
        self.lock = threading.Lock()

    def _connection(self) -> http.client.HTTPConnection:
        if getattr(self.local, "connection", None) is None:
            self.local.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        return self.local.connection

    def send(self, kind: str, method: str, path: str, body: dict | None, expect: int, scheduled: float) -> None:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            connection = self._connection()
            connection.request(method, path, json.dumps(body).encode() if body else None, headers)
            response = connection.getresponse()
            response.read()
            failure = None if response.status == expect else f"{method} {path} answered {response.status}"
        except (OSError, http.client.HTTPException) as error:
            self.local.connection = None
            failure = f"{method} {path}: {error!r}"
        finished = time.perf_counter()
        with self.lock:
            if failure:
                self.errors[kind].append(failure)
            else:
                self.latencies[kind].append((finished - scheduled) * 1000)

    def run(self, schedule: list[tuple[float, tuple]]) -> float:
        """Send every (offset, request) of ``schedule``; returns the seconds the whole run took.

        Liveness probes have connections of their own, as a prober would: they must not wait in the client behind
        a backlog of API requests.
        """
        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENT_THREADS) as pool, ThreadPoolExecutor(PROBE_THREADS) as probes:
            for offset, request in schedule:
                due = started + offset
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                (probes if request[0] == "live" else pool).submit(self.send, *request, due)
        return time.perf_counter() - started


def evenly(rate: float, seconds: float) -> list[float]:
    return [index / rate for index in range(int(rate * seconds))]


def mix_schedule(job_ids: list[int], source: str) -> list[tuple[float, tuple]]:
    randomness = random.Random(7)  # noqa: S311 - a repeatable request mix, not a secret
    kinds, weights = zip(*MIX, strict=True)
    requests = {
        "list": lambda: ("list", "GET", "/api/v1/quantum/jobs/?page_size=50", None, 200),
        "detail": lambda: ("detail", "GET", f"/api/v1/quantum/jobs/{randomness.choice(job_ids)}/", None, 200),
        "submit": lambda: ("submit", "POST", "/api/v1/quantum/jobs/", {"source": source, "shots": 100}, 201),
    }
    schedule = [(offset, requests[randomness.choices(kinds, weights)[0]]()) for offset in evenly(RATE, SECONDS)]
    probes = [(offset, ("live", "GET", "/health/live", None, 200)) for offset in evenly(LIVE_RATE, SECONDS)]
    return sorted(schedule + probes, key=lambda item: item[0])


def fill_jobs(count: int) -> list[int]:
    """Copies of the one completed job, ``count`` rows in all, in one INSERT … SELECT."""
    from django.db import connection

    from apps.quantum.models import QuantumJob

    template = QuantumJob.objects.get()
    columns = [field.column for field in QuantumJob._meta.concrete_fields if not field.primary_key]
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    table = connection.ops.quote_name(QuantumJob._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            # Table and column names come from the model, values are parameters.
            f"INSERT INTO {table} ({names}) SELECT {names} FROM {table}, generate_series(2, %s) WHERE id = %s",  # noqa: S608
            [count, template.pk],
        )
    return list(QuantumJob.objects.values_list("id", flat=True))


def bare_baseline() -> OpenLoopClient:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "benchmarks.bare_asgi:application", "--port", str(port)],
        cwd=PROJECT_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        client = OpenLoopClient(port)
        client.run([(offset, ("bare", "GET", "/", None, 200)) for offset in evenly(RATE + LIVE_RATE, SECONDS / 4)])
        return client
    finally:
        server.terminate()
        server.wait()


def summary_line(name: str, latencies: list[float], errors: list[str]) -> str:
    ordered = sorted(latencies)
    if not ordered:
        return f"  {name:<8} no answers, {len(errors)} errors"
    p50, p95, p99 = statistics.median(ordered), percentile(ordered, 0.95), percentile(ordered, 0.99)
    return (
        f"  {name:<8} {len(ordered):6,} ok {len(errors):4} errors   "
        f"p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  p99 {p99:7.1f} ms  max {ordered[-1]:7.1f} ms"
    )


def main() -> int:
    from benchmarks.quantum import job_wait_completed

    baseline = bare_baseline()
    environment = {"QUANTUM_MAX_QUEUED_PER_USER": "100000", "API_THROTTLE_USER": "1000000/min"}
    with portal_running(
        database=DATABASE, redis_url=REDIS_URL, queue="quantum", environment=environment, web_processes=WEB_PROCESSES
    ) as portal:
        source = ghz_qasm2(3)
        first = portal.api.post("/api/v1/quantum/jobs/", {"source": source, "shots": 100})
        job_wait_completed(first["id"])
        job_ids = fill_jobs(TABLE_ROWS)
        client = OpenLoopClient(portal.port, portal.token)
        took = client.run(mix_schedule(job_ids, source))

    sent = sum(len(values) for values in client.latencies.values()) + sum(map(len, client.errors.values()))
    print(
        f"Load: open loop, {RATE} requests/s of list/detail/submit + {LIVE_RATE}/s /health/live for {SECONDS} s, "
        f"runportal --workers {WEB_PROCESSES} + 1 worker, {TABLE_ROWS:,} jobs in the table"
    )
    print(f"  achieved {sent / took:6.1f} requests/s ({sent:,} in {took:.1f} s), client threads {CLIENT_THREADS}")
    print(summary_line("baseline", baseline.latencies["bare"], baseline.errors["bare"]) + "  (bare ASGI, same client)")
    for kind in ("list", "detail", "submit", "live"):
        print(summary_line(kind, client.latencies[kind], client.errors[kind]))
    errors = [error for kind_errors in client.errors.values() for error in kind_errors]
    for error in sorted(set(errors))[:10]:
        print(f"  error: {error}")

    list_p95 = percentile(sorted(client.latencies["list"]), 0.95)
    live_p99 = percentile(sorted(client.latencies["live"]), 0.99)
    print("Summary")
    met_list, met_live = list_p95 <= TARGET_LIST_P95_MS, live_p99 <= TARGET_LIVE_P99_MS
    print(f"  errors               {len(errors):6}     target 0            {verdict(not errors)}")
    print(f"  list p95             {list_p95:6.1f} ms  target <= {TARGET_LIST_P95_MS} ms   {verdict(met_list)}")
    print(f"  /health/live p99     {live_p99:6.1f} ms  target <= {TARGET_LIVE_P99_MS} ms    {verdict(met_live)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
