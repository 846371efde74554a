"""Tests run against a real PostgreSQL and a real Redis (their own Redis database)."""

import os
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

# Redis's default number of databases (0-15).
REDIS_DATABASES = 16

# A <NAME>_FILE would win over the test values: never let one point tests at real data. The archive
# connection is left out too: tests archive through the test database's own (owner) connection.
for name in (
    "DATABASE_URL_FILE",
    "REDIS_URL_FILE",
    "AUDIT_ARCHIVE_DATABASE_URL",
    "AUDIT_ARCHIVE_DATABASE_URL_FILE",
    "CELERY_BROKER_URL",
    "CELERY_BROKER_URL_FILE",
):
    os.environ.pop(name, None)


def _worker_redis_url(url: str, worker_number: int) -> str:
    """``url`` with its database number moved up by ``worker_number``."""
    parts = urlsplit(url)
    database = int(parts.path.strip("/") or 0) + worker_number
    if database >= REDIS_DATABASES:
        raise ImproperlyConfigured(
            f"TEST_REDIS_URL's database plus the parallel test worker's number is {database}, beyond Redis's "
            f"{REDIS_DATABASES} databases: give TEST_REDIS_URL a lower database or run fewer workers."
        )
    return parts._replace(path=f"/{database}").geturl()


# Parallel runs (pytest-xdist, `make test`): worker gwK uses Redis database <TEST_REDIS_URL's> + K (the default 12
# leaves 12-15 for up to four workers) and the data directory <OPSDECK_DATA_DIR>/gwK (backups, media, metrics files,
# generated keys); pytest-django gives it the database test_<name>_gwK. The worker's own values then replace the
# worker id in the environment: the processes its tests start (Celery workers, commands) inherit them as they are.
worker = os.environ.pop("PYTEST_XDIST_WORKER", "")
if worker:
    # Folders the controller's settings put in the environment that it passed on: the worker's own are in its data
    # directory (metrics files above all: each worker deletes the ones of an earlier run when it starts).
    for name in ("PROMETHEUS_MULTIPROC_DIR", "HF_HOME"):
        os.environ.pop(name, None)
data_dir = Path(os.environ.get("OPSDECK_DATA_DIR", Path(__file__).resolve().parents[2] / "var" / "test")) / worker
os.environ["OPSDECK_DATA_DIR"] = str(data_dir)
redis_url = _worker_redis_url(
    os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/12"), int(worker.removeprefix("gw") or 0)
)
os.environ["TEST_REDIS_URL"] = os.environ["REDIS_URL"] = redis_url
os.environ["DATABASE_URL"] = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opsdeck")
# Test workers serve no metrics endpoint unless a test asks for one (on a free port).
os.environ.setdefault("WORKER_METRICS_PORT", "0")
# Test workers announce themselves every second, so that a job waiting for one is sent soon after it starts.
os.environ.setdefault("WORKER_ANNOUNCE_INTERVAL", "1")
os.environ.setdefault("WORKER_ANNOUNCE_TIMEOUT", "5")
# The broker is TEST_REDIS_URL unless TEST_CELERY_BROKER_URL names another (tests/brokers.py switches it per test).
if os.environ.get("TEST_CELERY_BROKER_URL"):
    os.environ["CELERY_BROKER_URL"] = os.environ["TEST_CELERY_BROKER_URL"]

from .local import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Maintenance mode is read on every check in tests, so that a page's query count does not depend on whether the
# per-process copy (1 s elsewhere, apps/readonly/services.py) happened to expire between two requests.
MAINTENANCE_STATUS_CACHE_SECONDS = 0
STORAGES = {
    "default": MEDIA_STORAGE,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "backups": BACKUP_STORAGE,  # noqa: F405
}
STATIC_ROOT = DATA_DIR / "static"  # noqa: F405
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Redis pub/sub ignores the database number: test runs (and parallel workers) sharing one Redis server would hear
# each other's live updates. Channel names carrying the run's own database number keep them apart.
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"opsdeck:asgi:{urlsplit(redis_url).path.strip('/')}"  # noqa: F405
