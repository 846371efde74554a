"""Helpers for tests that run the project's own commands in child processes."""

import os
import socket
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
# Variables of the test process that must not leak into a child configured from scratch.
PROJECT_VARIABLES = ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "OPSDECK_DATA_DIR", "SECRET_KEY")


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
