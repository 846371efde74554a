"""A whole portal for the benchmarks: scratch PostgreSQL database, Redis, web process and one worker process."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import PROJECT_DIR, PortalProcess, multipart_body

PG = "postgres://postgres@127.0.0.1:5432"


def admin_execute(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as connection:
        connection.execute(sql)


def operator_token() -> str:
    """A new operator and an API token for it (Django must be set up)."""
    from django.contrib.auth.models import Group

    from apps.accounts.models import User
    from apps.accounts.roles import roles_setup
    from apps.accounts.tokens import token_create
    from apps.core.choices import Role

    roles_setup()
    user = User.objects.create_user("bench-operator", password=None)
    user.groups.add(Group.objects.get(name=Role.OPERATOR))
    return token_create(owner=user, name="benchmark", scopes=["read", "write"], expires_in_days=1).secret


class Api:
    """The portal's REST API with an operator's token."""

    def __init__(self, port: int, token: str):
        self.port, self.token = port, token

    def post(self, path: str, body: dict) -> dict:
        return self._request("POST", path, json.dumps(body).encode(), "application/json")

    def post_files(self, path: str, fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> dict:
        """A multipart/form-data POST: ``files`` maps a field to (file name, content)."""
        body, content_type = multipart_body(fields, files)
        return self._request("POST", path, body, content_type)

    def get(self, path: str) -> dict:
        return self._request("GET", path, None, "application/json", expect=200)

    def _request(self, method: str, path: str, body: bytes | None, content_type: str, expect: int = 201) -> dict:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": content_type}
        connection.request(method, path, body, headers)
        response = connection.getresponse()
        payload = json.loads(response.read() or b"{}")
        connection.close()
        if response.status != expect:
            raise RuntimeError(f"{method} {path} answered {response.status}: {payload}")
        return payload


@dataclass
class RunningPortal:
    api: Api
    port: int
    token: str


@contextmanager
def portal_running(
    *, database: str, redis_url: str, queue: str, environment: dict[str, str], web_processes: int = 1
) -> Iterator[RunningPortal]:
    """Scratch database ``database`` (dropped before and after), ``web_processes`` web server processes
    (`runportal --workers`) and one worker on ``queue``.

    Django is set up in this process too, on the same database, for checks the API does not offer.
    """
    import redis

    admin_execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    admin_execute(f"CREATE DATABASE {database}")
    redis.Redis.from_url(redis_url).flushdb()
    with tempfile.TemporaryDirectory(prefix=f"{database}-") as directory:
        data_dir = Path(directory)
        settings = {
            "DATABASE_URL": f"{PG}/{database}",
            "REDIS_URL": redis_url,
            "DJANGO_SETTINGS_MODULE": "project.settings.local",
            "OPSDECK_DATA_DIR": str(data_dir),
            "LOG_LEVEL": "warning",
            "API_THROTTLE_USER": "100000/min",
            **environment,
        }
        portal = PortalProcess(data_dir)
        portal.environment.update(settings)
        worker = None
        try:
            portal.manage("migrate", "--noinput", "-v", "0")
            os.environ.update(settings)
            import django

            django.setup()
            token = operator_token()
            portal.start("--workers", str(web_processes))
            worker = subprocess.Popen(
                [
                    *(sys.executable, "-m", "celery", "-A", "project", "worker", "-Q", queue, "-c", "1"),
                    *("-P", "prefork", "--without-gossip", "--without-mingle", "--loglevel", "warning"),
                ],
                cwd=PROJECT_DIR,
                env={**os.environ, **settings},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            yield RunningPortal(api=Api(portal.port, token), port=portal.port, token=token)
        except Exception:
            print(portal.kill()[-5000:])
            raise
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(30)
            portal.kill()
            from django.db import connections

            connections.close_all()
            admin_execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


async def ws_connect(port: int, token: str):
    """A /ws/jobs/ stream with the token, past its snapshot."""
    import websockets

    socket = await websockets.connect(
        f"ws://127.0.0.1:{port}/ws/jobs/",
        subprotocols=["bearer", token],
        origin=f"http://127.0.0.1:{port}",
        max_size=None,
    )
    snapshot = json.loads(await socket.recv())
    if snapshot.get("type") != "jobs.snapshot":
        raise RuntimeError(f"expected a snapshot first, got {snapshot}")
    return socket


async def wait_for_completed(socket, ids: set[int], timeout: float, kind: str = "quantum") -> None:
    """Read updates until every ``kind`` job in ``ids`` was reported completed (failed or cancelled: an error)."""
    remaining = set(ids)
    deadline = time.monotonic() + timeout
    while remaining:
        message = json.loads(await asyncio.wait_for(socket.recv(), deadline - time.monotonic()))
        if message.get("type") != "job.update" or message["kind"] != kind or message["id"] not in remaining:
            continue
        if message["status"] in ("failed", "cancelled"):
            raise RuntimeError(f"job {message['id']} failed: {message['error']}")
        if message["status"] == "completed":
            remaining.discard(message["id"])


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(len(values) * share))]


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"
