"""The portal over six hosts (tests/cluster/cluster.py), checked from outside as its users and operators see it.

The tests share one cluster and run in this order: the beat is watched while the workers are idle, and the last
test cuts a worker host off the network for good.
"""

import asyncio
import json
import time
import urllib.request
from datetime import datetime

import psutil
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.quantum_circuits import ghz_qasm2, slow_qasm2

from .app_hosts import WEB_PORT, WEB_PROCESSES, WORKER_METRICS_PORT, worker_name
from .cluster import BEAT_PROBE_SECONDS, BEAT_PROBE_TASK, LARGE_WORKER, WEBS, WORKERS

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]
FINISHED = ("completed", "failed", "cancelled")
WEB1, WEB2 = WEBS
LOST_WORKER_DEADLINE_SECONDS = 60


def _until(read, done, *, timeout: float = 60, what: str = "finished"):
    """Call ``read`` until ``done`` holds for what it returns; fail saying what it returned last."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = read()
        if done(value):
            return value
        time.sleep(0.2)
    raise AssertionError(f"not {what} within {timeout} s: {value}")


def _submit(client, source: str, **extra) -> dict:
    status, job = client.post_json("/api/v1/quantum/jobs/", {"source": source, "shots": 100, **extra})
    assert status == 201, job
    return job


def _finished_job(client, job_id: int, timeout: float = 60) -> dict:
    def read():
        status, job = client.get_json(f"/api/v1/quantum/jobs/{job_id}/")
        assert status == 200, job
        return job

    return _until(read, lambda job: job["status"] in FINISHED, timeout=timeout, what=f"quantum job {job_id} finished")


def _host_of(worker: str) -> str:
    """The celery node name in a job's ``worker`` ("celery@worker1 pid 42")."""
    return worker.split()[0]


def _metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def test_exactly_one_beat_sends_each_due_run_once(cluster):
    admin = cluster.client(WEB1, "admin")

    def probe_runs() -> list[dict]:
        status, page = admin.get_json(f"/api/v1/core/maintenance-runs/?task_name={BEAT_PROBE_TASK}&page_size=200")
        assert status == 200, page
        return [run for run in page["results"] if run["status"] != "running"]

    runs = _until(probe_runs, lambda runs: len(runs) >= 8, timeout=40, what="8 runs of the beat probe")
    started = sorted(datetime.fromisoformat(run["started_at"]) for run in runs)
    span = (started[-1] - started[0]).total_seconds()
    # One beat sends once per due time: n runs span about n - 1 intervals. A second beat would double the runs.
    assert len(runs) - 1 <= span / BEAT_PROBE_SECONDS * 1.25 + 1, (len(runs), span)
    assert {run["status"] for run in runs} == {"succeeded"}
    assert {run["worker"] for run in runs} <= {worker_name(host) for host in WORKERS}
    assert "Scheduler: Sending due task cluster beat probe" in cluster.processes["beat"].output()


def test_jobs_submitted_on_both_web_hosts_spread_over_both_workers(cluster):
    clients = [cluster.client(host) for host in WEBS]
    # Each takes a moment, so that one worker cannot take them all while the other waits.
    jobs = [_submit(clients[number % 2], slow_qasm2(18, 8), method="statevector") for number in range(8)]
    finished = [_finished_job(clients[0], job["id"]) for job in jobs]
    assert [job["status"] for job in finished] == ["completed"] * 8
    assert {_host_of(job["worker"]) for job in finished} == {worker_name(host) for host in WORKERS}


def test_websocket_client_on_web1_sees_the_updates_of_a_job_submitted_on_web2(cluster):
    token = cluster.tokens["operator"]
    origin = f"http://{WEB1.address}:{WEB_PORT}"

    async def watch() -> tuple[dict, list[str]]:
        async with websockets.connect(
            f"ws://{WEB1.address}:{WEB_PORT}/ws/jobs/", subprotocols=["bearer", token], origin=origin
        ) as socket:
            assert json.loads(await socket.recv())["type"] == "jobs.snapshot"
            job = await asyncio.to_thread(_submit, cluster.client(WEB2), ghz_qasm2(5))
            seen = []
            while not seen or seen[-1] not in FINISHED:
                message = json.loads(await asyncio.wait_for(socket.recv(), 60))
                if message.get("kind") == "quantum" and message.get("id") == job["id"]:
                    seen.append(message["status"])
            return job, seen

    job, seen = asyncio.run(watch())
    assert seen == ["queued", "running", "completed"], seen
    assert _finished_job(cluster.client(WEB2), job["id"])["status"] == "completed"


def test_a_backup_asked_on_a_web_host_is_taken_on_a_worker_host_into_the_shared_storage(cluster):
    admin = cluster.client(WEB1, "admin")
    status, job = admin.post_json("/api/v1/backups/")
    assert status == 202, job

    def read():
        return admin.get_json(f"/api/v1/backups/jobs/{job['id']}/")[1]

    job = _until(read, lambda job: job["status"] in FINISHED, what="backup job finished")
    assert job["status"] == "completed", job["error"]
    status, backup = admin.get_json(f"/api/v1/backups/{job['backup']['id']}/")
    assert status == 200, backup
    assert backup["status"] == "completed", backup
    (worker,) = cluster.query("SELECT worker FROM backups_backupjob WHERE id = %s", [job["id"]])[0]
    assert _host_of(worker) in {worker_name(host) for host in WORKERS}
    # pg_dump on the worker host reached the db host; the file is where every host finds it.
    stored = cluster.shared_dir() / "backups" / backup["path"]
    assert stored.is_file()
    assert stored.stat().st_size == backup["size_bytes"]


def test_each_web_host_serves_with_several_processes(cluster):
    for host in WEBS:
        portal = cluster.processes[host.name]
        assert f"web only, {WEB_PROCESSES} process(es)" in portal.output()
        # uvicorn's supervisor spawns the server processes; multiprocessing's resource tracker is no server.
        children = psutil.Process(portal.process.pid).children()
        servers = [child for child in children if "spawn_main" in " ".join(child.cmdline())]
        assert len(servers) == WEB_PROCESSES, [child.cmdline() for child in children]


def test_each_web_host_reports_its_own_requests(cluster):
    requests = {WEB1: 3, WEB2: 5}
    for host, count in requests.items():
        for _ in range(count):
            status, _me = cluster.client(host).get_json("/api/v1/accounts/me/")
            assert status == 200
    for host, count in requests.items():
        text = _scrape(f"http://{host.address}:{WEB_PORT}/metrics")
        served = _metric(text, "django_http_requests_total_by_view_transport_method_total", view="accounts:me")
        assert served == count, f"{host.name}: {served}"


def test_each_worker_host_serves_the_metrics_of_the_jobs_it_ran(cluster):
    rows = cluster.query("SELECT worker FROM quantum_quantumjob WHERE status = 'completed'")
    for host in WORKERS:
        ran = sum(1 for (worker,) in rows if _host_of(worker) == worker_name(host))
        text = _scrape(f"http://{host.address}:{WORKER_METRICS_PORT}/metrics")
        assert ran > 0
        assert _metric(text, "quantum_jobs_total", status="completed") == ran, host.name


def test_a_large_job_runs_on_the_large_queue_host_and_a_small_one_on_the_others(cluster):
    client = cluster.client(WEB1)
    # 23 qubits as a state vector: 128 MiB, over the 64 MiB of the small queue.
    large = _submit(client, ghz_qasm2(23), method="statevector")
    small = _submit(client, ghz_qasm2(3), method="statevector")

    assert (large["queue"], small["queue"]) == ("quantum-large", "quantum")
    large, small = (_finished_job(client, job["id"], timeout=120) for job in (large, small))
    assert (large["status"], small["status"]) == ("completed", "completed"), (large, small)
    assert _host_of(large["worker"]) == worker_name(LARGE_WORKER)
    assert _host_of(small["worker"]) in {worker_name(host) for host in WORKERS}


def test_a_job_whose_worker_host_is_cut_off_completes_on_the_other_within_a_minute(cluster):
    client = cluster.client(WEB2)
    # About 2 s of simulation on an idle machine: long enough to be cut mid-run, short enough to run again in time
    # on a loaded one.
    job = _submit(client, slow_qasm2(21, 16), method="statevector")

    def read():
        return client.get_json(f"/api/v1/quantum/jobs/{job['id']}/")[1]

    running = _until(read, lambda job: job["status"] == "running", what="quantum job running")
    holder = next(host for host in WORKERS if _host_of(running["worker"]) == worker_name(host))
    time.sleep(0.5)  # into the simulation
    cluster.cut_off(holder)
    cut_at = time.monotonic()

    finished = _finished_job(client, job["id"], timeout=LOST_WORKER_DEADLINE_SECONDS)
    took = time.monotonic() - cut_at
    assert finished["status"] == "completed", finished
    assert finished["attempts"] == 2, "it finished before the cut: give it a longer circuit"
    assert _host_of(finished["worker"]) != worker_name(holder)
    assert took < LOST_WORKER_DEADLINE_SECONDS
    print(f"job {job['id']} completed {took:.1f} s after {holder.name}'s link was cut")
