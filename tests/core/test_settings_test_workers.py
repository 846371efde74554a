"""The test settings give each parallel test worker (pytest-xdist's gwK) a Redis database, a data directory and live
update channels of its own, and pass those values, not the worker id, on to the processes its tests start."""

import subprocess
import sys
from pathlib import Path

from tests.helpers import PROJECT_DIR, clean_environment, manage

SHOW_SETTINGS = (
    "import os; from django.conf import settings; "
    "print(settings.REDIS_URL, settings.DATA_DIR, settings.PROMETHEUS_MULTIPROC_DIR, "
    "settings.CHANNEL_LAYERS['default']['CONFIG']['prefix'], "
    "os.environ['TEST_REDIS_URL'], os.environ['OPSDECK_DATA_DIR'], 'PYTEST_XDIST_WORKER' in os.environ)"
)


def _test_settings(tmp_path: Path, **variables: str) -> list[str]:
    environment = clean_environment(
        DJANGO_SETTINGS_MODULE="project.settings.test",
        OPSDECK_DATA_DIR=str(tmp_path),
        TEST_REDIS_URL="redis://127.0.0.1:6379/12",
        **variables,
    )
    result = manage("shell", "-c", SHOW_SETTINGS, environment=environment)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[-7:]


def test_parallel_worker_gets_its_own_redis_database_data_directory_and_channels(tmp_path):
    # The controller's metrics directory comes with its environment; the worker must not share it.
    shown = _test_settings(tmp_path, PYTEST_XDIST_WORKER="gw2", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "controller"))
    redis_url, data_dir, metrics_dir, prefix, passed_redis_url, passed_data_dir, worker_passed = shown

    worker_dir = (tmp_path / "gw2").resolve()
    assert redis_url == passed_redis_url == "redis://127.0.0.1:6379/14"
    assert Path(data_dir) == Path(passed_data_dir).resolve() == worker_dir
    assert Path(metrics_dir) == worker_dir / "prometheus"
    assert prefix == "opsdeck:asgi:14"
    assert worker_passed == "False"


def test_serial_run_uses_the_redis_database_and_data_directory_as_given(tmp_path):
    redis_url, data_dir, _, prefix, *_ = _test_settings(tmp_path)

    assert redis_url == "redis://127.0.0.1:6379/12"
    assert Path(data_dir) == tmp_path.resolve()
    assert prefix == "opsdeck:asgi:12"


def test_worker_beyond_the_redis_databases_stops_naming_the_variable(tmp_path):
    environment = clean_environment(
        DJANGO_SETTINGS_MODULE="project.settings.test",
        OPSDECK_DATA_DIR=str(tmp_path),
        TEST_REDIS_URL="redis://127.0.0.1:6379/12",
        PYTEST_XDIST_WORKER="gw4",
    )
    # As pytest-django loads the settings (manage.py would hide the error behind Django's own).
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert "TEST_REDIS_URL's database plus the parallel test worker's number is 16" in result.stderr
