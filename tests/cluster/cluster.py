"""Seven hosts on one machine: db (PostgreSQL + Redis), web1 and web2 (runportal), worker1 and worker2 (celery worker),
worker3 (celery worker of the quantum-large queue only), beat (celery beat); started together, and removed together
whatever happened, leftovers of earlier runs first."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.helpers import json_request

from .app_hosts import (
    LARGE_QUEUE,
    WEB_PORT,
    beat_start,
    host_environment,
    host_manage,
    portal_start,
    secrets_write,
    worker_name,
    worker_start,
)
from .database_host import DatabaseHost, database_host_start
from .network import Host, network_create, network_remove
from .processes import HostProcess

TEMP_PREFIX = "opsdeck-cluster-"
DB = Host("db", 2)
WEBS = [Host("web1", 11), Host("web2", 12)]
WORKERS = [Host("worker1", 21), Host("worker2", 22)]
# Takes only the large jobs (QUANTUM_QUEUES in app_hosts.py), as a host with more memory would.
LARGE_WORKER = Host("worker3", 23)
BEAT = Host("beat", 31)
# The beat host's probe: a schedule entry due every second, so that a second beat would show within seconds.
BEAT_PROBE_TASK = "maintenance.session_clear_expired"
BEAT_PROBE_SECONDS = 1

ACCOUNTS_AND_SCHEDULE = f"""
import json
from django.contrib.auth.models import Group
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_otp.plugins.otp_totp.models import TOTPDevice
from apps.accounts.models import User
from apps.accounts.roles import roles_setup
from apps.accounts.tokens import token_create

roles_setup()
call_command("setup_periodic_tasks")
tokens = {{}}
for role in ("operator", "admin"):
    user = User.objects.create_user(f"cluster-{{role}}", is_staff=role == "admin")
    user.groups.add(Group.objects.get(name=role))
    # Administrators' tokens work only while they have an authenticator.
    TOTPDevice.objects.create(user=user, name="cluster", confirmed=True)
    tokens[role] = token_create(owner=user, name="cluster", scopes=["read", "write"], expires_in_days=1).secret
probe_interval, _ = IntervalSchedule.objects.get_or_create(every={BEAT_PROBE_SECONDS}, period=IntervalSchedule.SECONDS)
PeriodicTask.objects.create(name="cluster beat probe", task="{BEAT_PROBE_TASK}", interval=probe_interval)
print(json.dumps(tokens))
"""


class PortalClient:
    """HTTP to one web host, as through the TLS proxy production settings expect (X-Forwarded-Proto: https)."""

    def __init__(self, host: Host, token: str):
        self.host, self.url, self.token = host, f"http://{host.address}:{WEB_PORT}", token

    def _request(self, path: str, body: dict | None = None) -> urllib.request.Request:
        data = None if body is None else json.dumps(body).encode()
        headers = {"X-Forwarded-Proto": "https", "Content-Type": "application/json"}
        return urllib.request.Request(self.url + path, data=data, headers=headers)

    def get_json(self, path: str) -> tuple[int, dict]:
        return json_request(self._request(path), self.token)

    def post_json(self, path: str, body: dict | None = None) -> tuple[int, dict]:
        return json_request(self._request(path, body or {}), self.token)


@dataclass
class Cluster:
    root: Path
    database: DatabaseHost | None = None
    environments: dict[str, dict[str, str]] = field(default_factory=dict)
    processes: dict[str, HostProcess] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    started_at: float = 0.0

    def client(self, host: Host, role: str = "operator") -> PortalClient:
        return PortalClient(host, self.tokens[role])

    def shared_dir(self) -> Path:
        return self.root / "shared"

    def host_dir(self, host: Host) -> Path:
        return self.root / "hosts" / host.name

    def cut_off(self, host: Host) -> None:
        """Pull ``host``'s network cable. Its processes are frozen too: on this machine they would go on using the
        cores the other hosts share, which hosts of their own would not."""
        host.cut()
        self.processes[host.name].freeze()

    def query(self, statement: str, params: list | None = None) -> list[tuple]:
        """Rows from the db host's database, read as the application role from outside."""
        with psycopg.connect(self.database.database_url, connect_timeout=5) as connection:
            return connection.execute(statement, params).fetchall()

    def logs(self) -> str:
        processes = list(self.processes.values())
        if self.database:
            processes += [self.database.postgres, self.database.redis]
        return "\n".join(process.tail() for process in processes)


def _stale_leftovers_remove() -> None:
    network_remove()
    for leftover in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)


def cluster_create() -> Cluster:
    _stale_leftovers_remove()
    root = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    root.chmod(0o755)  # the postgres user reaches its cluster below
    return Cluster(root=root)


def cluster_start(cluster: Cluster) -> None:
    """Bring every host up: the database first, the schema and accounts, web and workers, then the one beat."""
    cluster.started_at = time.monotonic()
    network_create([DB, *WEBS, *WORKERS, LARGE_WORKER, BEAT])
    (cluster.root / "db").mkdir()
    cluster.database = database_host_start(DB, cluster.root / "db")
    secret_files = secrets_write(cluster.root / "secrets")
    for host in (*WEBS, *WORKERS, LARGE_WORKER, BEAT):
        cluster.environments[host.name] = host_environment(
            host, root=cluster.root, database=cluster.database, secret_files=secret_files, web_hosts=WEBS
        )
    first_web = cluster.environments[WEBS[0].name]
    host_manage(WEBS[0], first_web, "migrate", "--noinput")
    cluster.tokens = json.loads(host_manage(WEBS[0], first_web, "shell", "-c", ACCOUNTS_AND_SCHEDULE).splitlines()[-1])
    for host in WEBS:
        cluster.processes[host.name] = portal_start(host, cluster.environments[host.name])
    for host in WORKERS:
        cluster.processes[host.name] = worker_start(host, cluster.environments[host.name])
    cluster.processes[LARGE_WORKER.name] = worker_start(
        LARGE_WORKER, cluster.environments[LARGE_WORKER.name], queues=(LARGE_QUEUE,)
    )
    for host in WEBS:
        url = f"http://{host.address}:{WEB_PORT}/health/live"
        cluster.processes[host.name].wait_until(lambda url=url: urllib.request.urlopen(url, timeout=2), "live")
    for host in (*WORKERS, LARGE_WORKER):
        cluster.processes[host.name].wait_for_output(f"{worker_name(host)} ready.")
    # Started once both workers consume, so that each due time's task runs at once and shows when it was due.
    cluster.processes[BEAT.name] = beat_start(BEAT, cluster.environments[BEAT.name])
    cluster.processes[BEAT.name].wait_for_output("beat: Starting...")


def cluster_stop(cluster: Cluster) -> None:
    """Stop every process, remove every namespace and link, delete every file; also after a failed start."""
    try:
        for process in reversed(cluster.processes.values()):
            process.stop()
        if cluster.database:
            cluster.database.stop()
    finally:
        network_remove()
        shutil.rmtree(cluster.root, ignore_errors=True)
