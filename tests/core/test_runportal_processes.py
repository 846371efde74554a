"""`runportal --workers N`: several web server processes on one port, kept alive by a supervisor; refused where
one process must hold the embedded worker and beat."""

import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import PortalProcess, child_database_url, manage

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _server_processes(parent_pid: int) -> set[int]:
    """The uvicorn server processes the supervisor started (spawned children, not multiprocessing's helpers)."""
    children = Path(f"/proc/{parent_pid}/task/{parent_pid}/children").read_text().split()
    servers = set()
    for child in children:
        command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"multiprocessing.spawn" in command:
            servers.add(int(child))
    return servers


def _live_status(portal: PortalProcess) -> int:
    with urllib.request.urlopen(portal.url + "/health/live", timeout=5) as response:
        return response.status


def _wait_for(condition, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not met within {timeout} s")


def test_several_web_processes_share_the_port_and_a_killed_one_is_replaced(transactional_db, tmp_path, settings):
    portal = PortalProcess(tmp_path, DATABASE_URL=child_database_url(), REDIS_URL=settings.REDIS_URL)
    portal.start("--workers", "2")
    try:
        servers = _wait_for(lambda: (found := _server_processes(portal.process.pid)) and len(found) == 2 and found)
        assert [_live_status(portal) for _ in range(20)] == [200] * 20

        killed = min(servers)
        os.kill(killed, signal.SIGKILL)
        replaced = _wait_for(lambda: (found := _server_processes(portal.process.pid)) - servers and found)
        assert killed not in replaced
        assert len(replaced) == 2
        _wait_for(lambda: all(_live_status(portal) == 200 for _ in range(10)))
        code, output = portal.stop(signal.SIGTERM)
    finally:
        portal.kill()
    assert code == 0, output
    assert "web only, 2 process(es)" in output
    assert "Traceback" not in output


def test_several_web_processes_are_refused_in_embedded_mode(tmp_path):
    portal = PortalProcess(tmp_path)
    result = manage("runportal", "--workers", "3", environment=portal.environment)
    assert result.returncode == 1
    assert "3 web processes (--workers or WEB_CONCURRENCY) need REDIS_URL" in result.stderr
    refused_by_environment = manage("runportal", environment={**portal.environment, "WEB_CONCURRENCY": "2"})
    assert refused_by_environment.returncode == 1
    assert "2 web processes" in refused_by_environment.stderr


def test_zero_web_processes_are_refused(tmp_path):
    result = manage("runportal", "--workers", "0", environment=PortalProcess(tmp_path).environment)
    assert result.returncode == 1
    assert "--workers must be at least 1, got 0." in result.stderr
