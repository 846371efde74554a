"""Tests run against a real PostgreSQL and a real Redis (their own Redis database)."""

import os
from pathlib import Path

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
os.environ["DATABASE_URL"] = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opsdeck")
os.environ.setdefault("OPSDECK_DATA_DIR", str(Path(__file__).resolve().parents[2] / "var" / "test"))
os.environ["REDIS_URL"] = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Test workers serve no metrics endpoint unless a test asks for one (on a free port).
os.environ.setdefault("WORKER_METRICS_PORT", "0")
# The broker is TEST_REDIS_URL unless TEST_CELERY_BROKER_URL names another (tests/brokers.py switches it per test).
if os.environ.get("TEST_CELERY_BROKER_URL"):
    os.environ["CELERY_BROKER_URL"] = os.environ["TEST_CELERY_BROKER_URL"]

from .local import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": MEDIA_STORAGE,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "backups": BACKUP_STORAGE,  # noqa: F405
}
STATIC_ROOT = DATA_DIR / "static"  # noqa: F405
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Redis pub/sub ignores the database number: test runs sharing one Redis server would hear each other's live
# updates. Channel names of the run's own database keep them apart.
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"opsdeck:asgi:{DATABASES['default']['NAME']}"  # noqa: F405
