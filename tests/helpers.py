"""Helpers for tests that run the project's own commands in child processes."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.conf import settings

PROJECT_DIR = Path(__file__).resolve().parents[1]
# Variables of the test process that must not leak into a child configured from scratch.
PROJECT_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "DJANGO_SETTINGS_MODULE",
    "OPSDECK_DATA_DIR",
    "SECRET_KEY",
)


def clean_environment(**overrides: str) -> dict[str, str]:
    """The current environment without the project's settings variables, plus ``overrides``."""
    environment = {name: value for name, value in os.environ.items() if name not in PROJECT_VARIABLES}
    environment.update(overrides)
    return environment


def manage(*args: str, environment: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def multipart_body(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its content type; ``files`` maps a field to (file name, content)."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    for name, (filename, content) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(head.encode() + content + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def json_request(request: urllib.request.Request, token: str = "") -> tuple[int, dict]:
    """Send ``request`` (with ``token`` as bearer when given); the status and the decoded JSON body."""
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


class PortalProcess:
    """`manage.py runportal` in a child process on a free port, with its own SQLite database."""

    def __init__(self, data_dir: Path, **environment: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.environment = clean_environment(
            **{
                "OPSDECK_DATA_DIR": str(data_dir),
                "DATABASE_URL": f"sqlite:///{data_dir / 'portal.sqlite3'}",
                "STATIC_ROOT": str(data_dir / "static"),
                **environment,
            }
        )
        (data_dir / "static").mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen | None = None

    def manage(self, *args: str) -> str:
        result = manage(*args, environment=self.environment)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def start(self, *arguments: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runportal", "--port", str(self.port), *arguments],
            cwd=PROJECT_DIR,
            env=self.environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: kill() reaches every server process
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"runportal exited early:\n{self.process.stdout.read()}")
            try:
                with urllib.request.urlopen(self.url + "/health/live", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("runportal did not answer /health/live within 60 s")

    def get_json(self, path: str, *, token: str = "") -> tuple[int, dict]:
        return json_request(urllib.request.Request(self.url + path), token)

    def post_json(self, path: str, body: dict, *, token: str = "") -> tuple[int, dict]:
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        return json_request(request, token)

    def post_files(self, path: str, fields: dict, files: dict, *, token: str = "") -> tuple[int, dict]:
        body, content_type = multipart_body(fields, files)
        request = urllib.request.Request(self.url + path, data=body, headers={"Content-Type": content_type})
        return json_request(request, token)

    def stop(self, signum: int = signal.SIGINT, timeout: float = 30) -> tuple[int, str]:
        """Send ``signum`` and return the exit code and everything the process printed."""
        self.process.send_signal(signum)
        output, _ = self.process.communicate(timeout=timeout)
        return self.process.returncode, output

    def kill(self) -> str:
        """SIGKILL runportal and the server processes it started (they would keep its output open); returns what
        it printed."""
        if not self.process or self.process.returncode is not None:
            return ""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.communicate()[0]


# For ``page.evaluate(PAGE_POST_JSON, [url, body])``: a JSON POST from inside a signed-in page (its session and
# CSRF token), bypassing the page's own form; gives ``[status, body]``.
PAGE_POST_JSON = """async ([url, body]) => {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      "X-CSRFToken": document.querySelector("[name=csrfmiddlewaretoken]").value,
    },
    body: JSON.stringify(body),
  });
  return [response.status, await response.json()];
}"""


def manifest_signed_bytes(manifest: dict) -> bytes:
    """What a report manifest's signature covers, rebuilt as the README tells auditors (no portal code)."""
    unsigned = {key: value for key, value in manifest.items() if key != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


async def messages_until_quiet(communicator, *, quiet: float = 0.5) -> list[dict]:
    """Everything a websocket test client receives until it has been silent for ``quiet`` seconds.

    Other tests' workers may still publish to the shared job groups; a test that a stream carries none of
    *its* events checks what arrived rather than that nothing did.
    """
    received = []
    while not await communicator.receive_nothing(timeout=quiet):
        received.append(await communicator.receive_output())
    return received


def api_error(response, status: int, code: str) -> dict:
    """The API's error body, after checking its status, its code and that it says what went wrong."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


def api_error_detail(response, status: int, code: str) -> str:
    """The message of an API error (see api_error)."""
    return api_error(response, status, code)["detail"]


def job_wait(job, statuses, timeout: float = 60):
    """Reload ``job`` until its status is one of ``statuses``; fail after ``timeout`` seconds saying where it stood."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in statuses:
            return job
        time.sleep(0.02)
    progress = f"{job.progress_done}/{job.progress_total}"
    raise AssertionError(f"{job} stayed {job.status} ({progress}, worker {job.worker!r}), expected one of {statuses}")


def child_database_url() -> str:
    """The URL of the database this test run uses, for child processes."""
    database = settings.DATABASES["default"]
    return f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"


class WorkerProcess:
    """A real `celery worker` (prefork, one child) in its own process group, on the test database, Redis and the
    test's broker."""

    def __init__(self, name: str, tmp_path, *, queues: tuple[str, ...] = (), **extra_environment: str):
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "project.settings.test",
            "TEST_DATABASE_URL": child_database_url(),
            "TEST_REDIS_URL": settings.REDIS_URL,
            "TEST_CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
            # One row per forward pass, so that an inference job runs long enough to be killed mid-run.
            "REGISTRY_JOB_BATCH_SIZE": "1",
            **extra_environment,
        }
        self.hostname = f"{name}-{os.getpid()}@lost-worker-test"
        queues = ",".join(queues or (queue.name for queue in settings.CELERY_TASK_QUEUES))
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "project", "worker", "-Q", queues, "-c", "1", "-P", "prefork"),
                *("--without-heartbeat", "--without-gossip", "--without-mingle", "-n", self.hostname),
            ],
            cwd=PROJECT_DIR,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def holds(self, job) -> bool:
        return job.worker.startswith(f"{self.hostname} ")

    def kill_everything(self) -> None:
        """SIGKILL the main process and its pool children: nothing gets to acknowledge, reject or clean up."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


# axe-core (tests/browser_assets) and the page function that lists its serious and critical violations.
AXE = PROJECT_DIR / "tests" / "browser_assets" / "axe.min.js"
AXE_SERIOUS = """async () => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations
    .filter((violation) => ["serious", "critical"].includes(violation.impact))
    .map((violation) => {
      const where = violation.nodes.slice(0, 3).map((node) => node.target.join(" "));
      return `${violation.id}: ${violation.help} at ${where.join(", ")}`;
    });
}"""


def axe_add(page) -> None:
    """axe-core into ``page`` through the DevTools protocol: Playwright's add_script_tag writes an inline <script>,
    which the portal's Content-Security-Policy refuses (and reports as a console error)."""
    page.evaluate("() => {\n" + AXE.read_text() + "\n}")


def without_nonces(content: bytes) -> bytes:
    """A page's HTML with its Content-Security-Policy nonces blanked: two answers to the same request differ in
    nothing else."""
    return re.sub(rb'nonce="[^"]*"', b'nonce=""', content)


def wait_for(condition, what: str, timeout: float = 60):
    """Poll ``condition`` until it returns something true, and return that; fail the test, naming ``what``, after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout} s")
        time.sleep(0.1)
    return found
