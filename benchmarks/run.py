"""Benchmarks: print figures and the ratio against a baseline measured in the same run.

HTTP: requests per second through `runportal` (embedded mode, SQLite) against
a bare ASGI app served by the same uvicorn, with the same client.
"""

import http.client
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import PROJECT_DIR, PortalProcess, free_port

CLIENT_THREADS = 4
REQUESTS_PER_THREAD = 500
# /health/live: the whole middleware stack's entry; /health/ready: database, channel layer and disk checks.
PORTAL_PATHS = ("/health/live", "/health/ready")


def requests_per_second(port: int, path: str) -> tuple[float, float]:
    """Requests/s and median latency (ms) with keep-alive connections from several threads."""
    latencies: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        for _ in range(REQUESTS_PER_THREAD):
            started = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{path} answered {response.status}")
            mine.append(time.perf_counter() - started)
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(CLIENT_THREADS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, statistics.median(latencies) * 1000


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/")
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def bench_http() -> None:
    port = free_port()
    bare = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "benchmarks.bare_asgi:application",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=PROJECT_DIR,
    )
    try:
        wait_for(port)
        requests_per_second(port, "/")  # warm-up
        bare_rps, bare_ms = requests_per_second(port, "/")
    finally:
        bare.terminate()
        bare.wait()

    with tempfile.TemporaryDirectory() as data_dir:
        portal = PortalProcess(Path(data_dir), LOG_LEVEL="warning")
        portal.manage("migrate", "--noinput")
        portal.start()
        try:
            figures = {}
            for path in PORTAL_PATHS:
                requests_per_second(portal.port, path)  # warm-up
                figures[path] = requests_per_second(portal.port, path)
        finally:
            portal.kill()

    print(f"HTTP, {CLIENT_THREADS} keep-alive clients x {REQUESTS_PER_THREAD} requests")
    print(f"  baseline bare ASGI app      {bare_rps:8.0f} req/s  median {bare_ms:6.2f} ms")
    for path, (rps, ms) in figures.items():
        print(f"  portal {path:<20} {rps:8.0f} req/s  median {ms:6.2f} ms  ratio {rps / bare_rps:5.2f}x baseline")


if __name__ == "__main__":
    bench_http()
