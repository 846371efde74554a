"""Shared fixtures: named users per role, API and browser clients, a real Celery worker."""

import os
import threading
import time

import pytest
import redis
import uvicorn
import xdist
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.files.storage import storages
from rest_framework.test import APIClient

from apps.core.choices import Role

from .brokers import celery_broker, rabbitmq_vhost
from .factories import DEFAULT_PASSWORD, UserFactory
from .helpers import free_port
from .mail_server import smtp_server  # noqa: F401 (a fixture for every test package)
from .mfa import otp_force_login

CHROMIUM = "/usr/bin/chromium"
MEDIA_BUCKET = "opsdeck-media-test"
MEDIA_KEY_PREFIX = "opsdeck-media"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_sessionstart(session):
    # The controller of parallel workers runs no test; each worker cleans its own Redis database and data directory.
    if xdist.is_xdist_controller(session):
        return
    # Metrics files and Redis keys of an earlier run must not leak into this one.
    # This process's own metric files are already open (memory-mapped): keep them.
    own_suffix = f"_{os.getpid()}.db"
    for metrics_file in settings.PROMETHEUS_MULTIPROC_DIR.glob("*.db"):
        if not metrics_file.name.endswith(own_suffix):
            metrics_file.unlink()
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture(autouse=True)
def _no_request_counts_of_earlier_tests():
    """Throttle and refused-request counts live in Redis per time window, across tests: start each test at zero,
    or it would find an earlier test's count (or its "first refusal already written") in the same window."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    for pattern in ("*opsdeck:throttle:*", "*opsdeck:refused:*"):
        for key in client.scan_iter(match=pattern, count=1000):
            client.delete(key)
    client.close()


@pytest.fixture
def password():
    return DEFAULT_PASSWORD


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_user(db):
    return UserFactory(username="alice-admin", is_staff=True, roles=[Role.ADMIN])


@pytest.fixture
def operator_user(db):
    return UserFactory(username="oscar-operator", roles=[Role.OPERATOR])


@pytest.fixture
def viewer_user(db):
    return UserFactory(username="vera-viewer", roles=[Role.VIEWER])


@pytest.fixture
def compliance_user(db):
    return UserFactory(username="carl-compliance", roles=[Role.COMPLIANCE])


@pytest.fixture
def outsider_user(db):
    """An active account with no role at all."""
    return UserFactory(username="nora-nobody")


@pytest.fixture
def otp_login():
    """``otp_login(client, user)``: sign in with an OTP-verified session (staff need one for the admin)."""
    return otp_force_login


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture(scope="session")
def rabbitmq_url():
    """A RabbitMQ virtual host of this run's own (named after its database), deleted at the end of the run."""
    name = f"{settings.DATABASES['default']['NAME'].removeprefix('test_')}_{os.getpid()}"
    with rabbitmq_vhost(name) as url:
        yield url


@pytest.fixture
def broker():
    """Celery's broker in this test: the test settings' own. Where behaviour must hold on every broker, a folder's
    conftest makes this ``each_broker``."""
    return settings.CELERY_BROKER_URL


@pytest.fixture(params=["redis", "amqp"])
def each_broker(request):
    """The test once on Redis and once on RabbitMQ, Celery in this process (and workers it starts) switched to it."""
    url = settings.REDIS_URL if request.param == "redis" else request.getfixturevalue("rabbitmq_url")
    with celery_broker(url):
        yield url


@pytest.fixture
def celery_worker(transactional_db, broker):
    """A real Celery worker thread consuming every queue from the test's broker."""
    from celery.contrib.testing.worker import start_worker

    from project.celery import app

    with start_worker(
        app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        queues=[queue.name for queue in app.conf.task_queues],
        shutdown_timeout=30,
        # Its heartbeat events wake the worker's event loop every 2 s, so that it notices the end of the test:
        # RabbitMQ's transport sets no timer of its own, and the loop would sleep up to 10 s.
        without_heartbeat=False,
    ) as worker:
        yield worker


@pytest.fixture
def asgi_live_server(transactional_db):
    """The portal's ASGI application (HTTP and websockets) under uvicorn in a thread, static files included."""
    from project.asgi import application

    port = free_port()
    config = uvicorn.Config(
        ASGIStaticFilesHandler(application), host="127.0.0.1", port=port, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="asgi-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("The ASGI test server did not start within 20 s.")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=20)


@pytest.fixture
def chromium():
    """Headless Debian Chromium driven by Playwright (no browser download).

    Playwright's sync API keeps an event loop in this thread, where Django then
    refuses database calls: request this fixture last, after the database fixtures.
    """
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make test`, which installs Debian's chromium package.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def registry_storage(settings, tmp_path):
    """Model registry tests: artifacts, inputs and results in folders of the test's own (so leftovers
    can be counted), and no pipeline loaded before or after."""
    from apps.registry.loading import pipelines

    settings.REGISTRY_DIR = tmp_path / "registry"
    settings.MEDIA_ROOT = tmp_path / "media"
    pipelines.clear()
    yield settings
    pipelines.clear()


@pytest.fixture
def backup_dir(tmp_path, settings):
    """The backup storage in a folder of this test; the storages handler caches backends, so drop its copy."""
    location = tmp_path / "backups"
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(location)}},
    }
    storages._storages.pop("backups", None)
    yield location
    storages._storages.pop("backups", None)


@pytest.fixture
def s3_endpoint():
    """A real S3 server on localhost (moto's server mode), for this test."""
    from .s3 import s3_server

    with s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def media_bucket(s3_endpoint, settings, tmp_path):
    """Media (reports, registry artifacts, inference inputs and results) in a bucket, as MEDIA_S3_* configure it;
    MEDIA_ROOT points at a folder of the test's own, where nothing should land. Returns the bucket's S3 client."""
    from .s3 import s3_client, s3_storage_settings

    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket=MEDIA_BUCKET)
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_storage_settings("MEDIA", endpoint=s3_endpoint, bucket=MEDIA_BUCKET, key_prefix=MEDIA_KEY_PREFIX),
    }
    return client


@pytest.fixture(scope="session")
def guarded_s3():
    """An S3 server that checks keys, with the media bucket and a user whose key has no permission on it; yields
    the endpoint and that user's (key id, secret)."""
    from .s3 import iam_client, s3_client, s3_server

    # Three requests set it up unchecked: the bucket, the user, the user's key.
    with s3_server(unchecked_requests=3) as endpoint:
        s3_client(endpoint).create_bucket(Bucket=MEDIA_BUCKET)
        iam = iam_client(endpoint)
        iam.create_user(UserName="no-permission")
        key = iam.create_access_key(UserName="no-permission")["AccessKey"]
        yield endpoint, (key["AccessKeyId"], key["SecretAccessKey"])


@pytest.fixture(params=["unknown key", "key without permission", "unreachable"])
def unusable_media(request, settings):
    """The media bucket made unusable (once per way: a key S3 does not know, a key without permission on the
    bucket, no S3 service at the endpoint) when the test calls ``use()``."""
    from .s3 import CREDENTIALS, REFUSED, UNREACHABLE, UnusableMedia, s3_storage_settings

    key = (CREDENTIALS["aws_access_key_id"], CREDENTIALS["aws_secret_access_key"])
    if request.param == "unreachable":
        endpoint, reason = f"http://127.0.0.1:{free_port()}", UNREACHABLE
    else:
        endpoint, permissionless_key = request.getfixturevalue("guarded_s3")
        key = key if request.param == "unknown key" else permissionless_key
        reason = REFUSED
    storage = s3_storage_settings(
        "MEDIA", endpoint=endpoint, bucket=MEDIA_BUCKET, key_prefix=MEDIA_KEY_PREFIX, access_key=key
    )
    return UnusableMedia(settings=settings, storage=storage, reason=reason, secrets=key)


@pytest.fixture
def roles(db):
    """The role groups with their permissions, as `setup_roles` makes them."""
    from apps.accounts.roles import roles_setup

    roles_setup()


@pytest.fixture
def admin_client(client, roles, admin_user):
    """A browser session of an administrator who signed in with a code (the admin's own tests)."""
    from tests.mfa import otp_force_login

    otp_force_login(client, admin_user)
    return client
