"""The portal's processes on the rehearsal's hosts, configured as README "Several hosts" says.

Production settings: the four secrets as ``<NAME>_FILE`` (made the way README "Docker" makes them),
``ALLOWED_HOSTS``, ``DATABASE_URL`` and ``REDIS_URL``. Each host has its own data and metrics directories;
media (registry artifacts, inference inputs and results, compliance reports), registry and backups live in one
directory every host reaches, as S3 or a network file system would be in production.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from tests.helpers import PROJECT_DIR, clean_environment

from .database_host import DatabaseHost
from .network import Host
from .processes import HostProcess

WEB_PORT = 8000
# As docker-compose.yml runs them: several server processes per web host, sharing its port.
WEB_PROCESSES = 2
WORKER_METRICS_PORT = 9808
# Lost jobs are noticed within seconds rather than the default half minute, to keep the rehearsal short.
CLUSTER_QUANTUM_QUEUES = "quantum:memory_mb=64,quantum-large,quantum-gpu:processor=gpu"
LARGE_QUEUE = "quantum-large"
FAST_JOB_LAYER = {"JOBS_HEARTBEAT_INTERVAL": "1", "JOBS_HEARTBEAT_TIMEOUT": "4", "JOBS_SWEEP_INTERVAL": "1"}


def secrets_write(directory: Path) -> dict[str, str]:
    """The four production secrets in files readable by their owner only; returns the ``<NAME>_FILE`` variables."""
    directory.mkdir(mode=0o700)
    values = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "AUDIT_SIGNING_KEY": secrets.token_urlsafe(50),
        "BACKUP_ENCRYPTION_KEY": secrets.token_hex(32),
    }
    files = {}
    for name, value in values.items():
        path = directory / name.lower()
        path.write_text(value + "\n")
        path.chmod(0o600)
        files[f"{name}_FILE"] = str(path)
    report_key = directory / "report_signing_key.pem"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(report_key)], check=True, capture_output=True
    )
    files["REPORT_SIGNING_KEY_FILE"] = str(report_key)
    return files


def host_environment(
    host: Host, *, root: Path, database: DatabaseHost, secret_files: dict[str, str], web_hosts: list[Host]
) -> dict[str, str]:
    """What a process on ``host`` is started with."""
    own, shared = root / "hosts" / host.name, root / "shared"
    for directory in (own / "prometheus", own / "static", shared):
        directory.mkdir(parents=True, exist_ok=True)
    environment = clean_environment(
        DJANGO_SETTINGS_MODULE="project.settings.production",
        ALLOWED_HOSTS=",".join(web.address for web in web_hosts),
        DATABASE_URL=database.database_url,
        REDIS_URL=database.redis_url,
        OPSDECK_DATA_DIR=str(own),
        PROMETHEUS_MULTIPROC_DIR=str(own / "prometheus"),
        STATIC_ROOT=str(own / "static"),
        MEDIA_ROOT=str(shared / "media"),
        REGISTRY_DIR=str(shared / "registry"),
        BACKUP_DIR=str(shared / "backups"),
        # A worker serves its host's metrics to a Prometheus elsewhere (here: the test, outside).
        WORKER_METRICS_ADDRESS=host.address,
        WORKER_METRICS_PORT=str(WORKER_METRICS_PORT),
        # One job per simulator call, so that a handful of jobs is a handful of tasks to spread.
        QUANTUM_BATCH_SIZE="1",
        # Jobs over 64 MiB of state (23 qubits and more) go to the large-queue worker host.
        QUANTUM_QUEUES=CLUSTER_QUANTUM_QUEUES,
        **FAST_JOB_LAYER,
        **secret_files,
    )
    environment.pop("CELERY_BROKER_URL", None)  # the broker is REDIS_URL's here
    return environment


def host_manage(host: Host, environment: dict[str, str], *args: str) -> str:
    """``manage.py <args>`` run once on ``host``; its standard output."""
    result = subprocess.run(
        host.command(sys.executable, "manage.py", *args),
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, f"manage.py {args[0]} on {host.name} failed:\n{result.stderr[-3000:]}"
    return result.stdout


def _log(environment: dict[str, str], name: str) -> Path:
    return Path(environment["OPSDECK_DATA_DIR"]) / f"{name}.log"


def portal_start(host: Host, environment: dict[str, str]) -> HostProcess:
    """``runportal --workers 2`` on ``host``, web only since REDIS_URL is set."""
    argv = [
        *(sys.executable, "manage.py", "runportal", "--host", host.address, "--port", str(WEB_PORT)),
        *("--workers", str(WEB_PROCESSES)),
    ]
    return HostProcess(host, "runportal", argv, log=_log(environment, "runportal"), environment=environment)


def worker_start(host: Host, environment: dict[str, str], queues: tuple[str, ...] = ()) -> HostProcess:
    """A ``celery worker`` named after its host, on ``queues`` (every queue but the large one unless given), with one
    pool process."""
    queues = ",".join(queues or (queue.name for queue in settings.CELERY_TASK_QUEUES if queue.name != LARGE_QUEUE))
    argv = [
        *(sys.executable, "-m", "celery", "-A", "project", "worker", "-Q", queues),
        *("-c", "1", "-n", worker_name(host), "-l", "INFO"),
    ]
    return HostProcess(host, "celery worker", argv, log=_log(environment, "worker"), environment=environment)


def worker_name(host: Host) -> str:
    return f"celery@{host.name}"


def beat_start(host: Host, environment: dict[str, str]) -> HostProcess:
    """The one ``celery beat``, with the database scheduler of the settings."""
    pidfile = Path(environment["OPSDECK_DATA_DIR"]) / "beat.pid"
    argv = [sys.executable, "-m", "celery", "-A", "project", "beat", "-l", "INFO", f"--pidfile={pidfile}"]
    return HostProcess(host, "celery beat", argv, log=_log(environment, "beat"), environment=environment)
