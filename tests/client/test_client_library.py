"""The client library against a real HTTP server on localhost: 429 and 503 are sent again after the Retry-After the
server asked for, within bounded attempts and total wait; connection errors are retried for reads only; lists are
followed page after page; waiting polls when it has no stream."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from opsdeck_client import Client, ConnectionFailed, JobFailed, OpsdeckError, RetryPolicy, ServiceUnavailable

from .servers import ScriptedServer

OPSDECK = str(Path(sys.executable).parent / "opsdeck")
EMPTY_PAGE = {"count": 0, "next": None, "previous": None, "results": []}
UNAVAILABLE = {"detail": "The portal is in maintenance until 14:00 UTC.", "code": "unavailable"}
THROTTLED = {"detail": "Request was throttled. Expected available in 1 second.", "code": "throttled"}


TOKEN = "odk_test_token"


def opsdeck(*args: str, url: str, token: str = TOKEN) -> subprocess.CompletedProcess:
    environment = {**os.environ, "OPSDECK_URL": url, "OPSDECK_TOKEN": token}
    return subprocess.run([OPSDECK, *args], env=environment, capture_output=True, text=True, timeout=60, check=False)


def test_cli_waits_the_retry_after_of_each_503_then_succeeds():
    answers = [(503, {"Retry-After": "1"}, UNAVAILABLE)] * 2 + [(200, {}, EMPTY_PAGE)]
    with ScriptedServer(answers) as server:
        started = time.monotonic()
        result = opsdeck("--json", "jobs", "list", url=server.url)
        elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert [(method, path.split("?")[0]) for method, path, _, _ in server.requests] == [
        ("GET", "/api/v1/quantum/jobs/")
    ] * 3
    assert all(auth == "Bearer odk_test_token" for *_, auth in server.requests)
    assert all(gap >= 0.95 for gap in server.gaps()), server.gaps()
    assert 2.0 <= elapsed < 6, elapsed
    assert result.stderr.count("HTTP 503, trying again in 1 s") == 2, result.stderr


def test_a_throttled_submission_is_sent_again_after_retry_after():
    created = {"id": 7, "status": "queued", "queue_position": 1}
    answers = [(429, {"Retry-After": "1"}, THROTTLED), (201, {}, created)]
    with ScriptedServer(answers) as server:
        client = Client(server.url, TOKEN)
        started = time.monotonic()
        job = client.quantum_submit("OPENQASM 2.0;", shots=10)
        elapsed = time.monotonic() - started
    assert job == created
    assert [method for method, *_ in server.requests] == ["POST", "POST"]
    assert server.gaps()[0] >= 0.95
    assert elapsed < 4


def test_retries_stop_after_the_attempts_allowed_with_the_portals_error():
    with ScriptedServer([(503, {"Retry-After": "1"}, UNAVAILABLE)]) as server:
        client = Client(server.url, TOKEN, retry=RetryPolicy(attempts=3, max_wait=30))
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable) as raised:
            list(client.quantum_jobs())
        elapsed = time.monotonic() - started
    assert len(server.requests) == 3
    assert 2.0 <= elapsed < 5
    assert raised.value.status == 503
    assert raised.value.code == "unavailable"
    assert raised.value.retry_after == 1
    assert str(raised.value) == "The portal is in maintenance until 14:00 UTC. (HTTP 503 unavailable)"


def test_a_wait_beyond_the_total_allowed_is_not_started():
    with ScriptedServer([(503, {"Retry-After": "120"}, UNAVAILABLE)]) as server:
        started = time.monotonic()
        result = opsdeck("jobs", "list", url=server.url)
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert len(server.requests) == 1
    assert elapsed < 5
    assert result.stdout == ""
    assert result.stderr == "opsdeck: error: The portal is in maintenance until 14:00 UTC. (HTTP 503 unavailable)\n"
    with ScriptedServer([(503, {"Retry-After": "120"}, UNAVAILABLE)]) as server:
        as_json = opsdeck("--json", "jobs", "list", url=server.url)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == {
        "error": "The portal is in maintenance until 14:00 UTC. (HTTP 503 unavailable)",
        "status": 503,
        "code": "unavailable",
        "body": UNAVAILABLE,
    }


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_errors_are_retried_for_reads_but_never_for_submissions():
    notices = []
    client = Client(
        f"http://127.0.0.1:{_closed_port()}",
        TOKEN,
        retry=RetryPolicy(attempts=3, backoff=0.05),
        on_retry=lambda reason, wait, attempt: notices.append((reason, attempt)),
    )
    with pytest.raises(ConnectionFailed):
        client.me()
    assert notices == [("connection failed", 2), ("connection failed", 3)]
    notices.clear()
    with pytest.raises(ConnectionFailed):
        client.quantum_submit("OPENQASM 2.0;")
    assert notices == [], "a POST the portal may have received must not be sent twice"


def test_the_client_imports_no_portal_code():
    script = (
        "import sys, opsdeck_client, opsdeck_client.cli; "
        "print([m for m in sys.modules if m.split('.')[0] in ('django', 'apps', 'project', 'rest_framework')])"
    )
    environment = {name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True, cwd="/"
    )
    assert result.stdout.strip() == "[]"


def test_lists_are_followed_page_after_page_on_the_same_portal_only():
    with ScriptedServer([]) as server:
        second_page = f"{server.url}/api/v1/registry/models/?page=2"
        server.answers = [
            (200, {}, {"count": 3, "next": second_page, "results": [{"name": "a"}, {"name": "b"}]}),
            (200, {}, {"count": 3, "next": None, "results": [{"name": "c"}]}),
        ]
        assert [model["name"] for model in Client(server.url, TOKEN).models()] == ["a", "b", "c"]
        assert [path for _, path, _, _ in server.requests] == [
            "/api/v1/registry/models/",
            "/api/v1/registry/models/?page=2",
        ]

        server.requests.clear()
        server.answers = [(200, {}, {"count": 3, "next": "http://elsewhere.example/page2", "results": [{"name": "a"}]})]
        models = Client(server.url, TOKEN).models()
        assert next(models)["name"] == "a"
        with pytest.raises(OpsdeckError, match="next page is on another host"):
            next(models)
        assert len(server.requests) == 1, "the token must not follow a link to another host"


def test_waiting_without_the_stream_polls_until_the_job_has_finished():
    running = {"id": 9, "status": "running", "error": ""}
    with ScriptedServer([(200, {}, running)] * 2 + [(200, {}, {**running, "status": "completed"})]) as server:
        seen = []
        job = Client(server.url, TOKEN).wait("quantum", 9, stream=False, poll_interval=0.05, on_update=seen.append)
    assert job["status"] == "completed"
    assert seen == [running, running]
    assert {path for _, path, _, _ in server.requests} == {"/api/v1/quantum/jobs/9/"}

    failed = {"id": 9, "status": "failed", "error": "Out of memory: 30 qubits need 16 GiB."}
    with ScriptedServer([(200, {}, failed)]) as server, pytest.raises(JobFailed) as raised:
        Client(server.url, TOKEN).wait("quantum", 9, stream=False)
    assert str(raised.value) == "quantum job 9 failed: Out of memory: 30 qubits need 16 GiB."


def test_usage_and_local_input_errors_are_one_line_and_exit_2(tmp_path):
    missing = opsdeck("jobs", "submit", str(tmp_path / "missing.qasm"), url="http://127.0.0.1:9")
    assert missing.returncode == 2
    assert missing.stderr == (
        f"opsdeck: error: Invalid value for 'FILE': File '{tmp_path / 'missing.qasm'}' does not exist. "
        "(see 'opsdeck jobs submit --help')\n"
    )
    report = tmp_path / "report.csv"
    report.write_text("a,b\n")
    no_manifest = opsdeck("reports", "verify", str(report), "--key", str(report), url="")
    assert no_manifest.returncode == 2
    assert no_manifest.stderr == f"opsdeck: error: No manifest file at {report}.manifest.json.\n"
    no_address = opsdeck("models", "list", url="")
    assert no_address.returncode == 2
    assert no_address.stderr == "opsdeck: error: No portal address: set OPSDECK_URL (e.g. https://ops.example.com).\n"
