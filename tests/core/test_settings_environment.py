"""Settings come from the environment; bad values name the variable."""

import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from project.settings.env import Environment
from tests.helpers import clean_environment, manage

LONG_SECRET = "k3y-" + "x7Qp2LmZ9v" * 6


@pytest.mark.parametrize(
    ("variable", "value", "read"),
    [
        ("DEBUG", "maybe", lambda env: env.bool("DEBUG", False)),
        ("API_PAGE_SIZE", "lots", lambda env: env.int("API_PAGE_SIZE", 50)),
        ("API_PAGE_SIZE", "0", lambda env: env.int("API_PAGE_SIZE", 50, minimum=1)),
        ("LOG_FORMAT", "xml", lambda env: env.choice("LOG_FORMAT", "text", ("text", "json"))),
        ("DATABASE_URL", "mysql://db/opsdeck", lambda env: env.database("DATABASE_URL")),
        ("DATABASE_URL", "postgres://db:5432/", lambda env: env.database("DATABASE_URL")),
        ("REDIS_URL", "http://cache:6379/0", lambda env: env.redis_url("REDIS_URL")),
        ("API_THROTTLE_USER", "fast", lambda env: env.rate("API_THROTTLE_USER", "5000/min")),
        ("REGISTRY_DRIFT_PSI_ALERT", "high", lambda env: env.float("REGISTRY_DRIFT_PSI_ALERT", 0.25)),
        ("REGISTRY_DRIFT_PSI_ALERT", "nan", lambda env: env.float("REGISTRY_DRIFT_PSI_ALERT", 0.25)),
        ("REGISTRY_DRIFT_PSI_WARN", "-0.1", lambda env: env.float("REGISTRY_DRIFT_PSI_WARN", 0.1, minimum=0.0)),
    ],
)
def test_bad_value_raises_naming_the_variable(variable, value, read):
    with pytest.raises(ImproperlyConfigured, match=variable):
        read(Environment({variable: value}))


def test_missing_required_variable_is_named():
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY must be set"):
        Environment({}).secret("SECRET_KEY")


def test_secret_is_read_from_file_without_trailing_newline(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("s3cr3t-value\n")
    assert Environment({"SECRET_KEY_FILE": str(secret_file)}).secret("SECRET_KEY") == "s3cr3t-value"


def test_unreadable_secret_file_is_named(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY_FILE"):
        Environment({"SECRET_KEY_FILE": str(tmp_path / "absent")}).secret("SECRET_KEY")


def test_redis_url_error_does_not_echo_the_password():
    with pytest.raises(ImproperlyConfigured) as error:
        Environment({"REDIS_URL": "http://:hunter2@cache:6379/0"}).redis_url("REDIS_URL")
    assert "hunter2" not in str(error.value)


def test_values_are_parsed():
    env = Environment(
        {
            "DEBUG": "yes",
            "ALLOWED_HOSTS": "a.example, b.example",
            "DATABASE_URL": "postgres://ops:pw@db:5433/opsdeck",
            "REDIS_URL": "redis://cache:6379/2",
        }
    )
    assert env.bool("DEBUG", False) is True
    assert env.list("ALLOWED_HOSTS") == ["a.example", "b.example"]
    database = env.database("DATABASE_URL")
    assert (database["HOST"], database["PORT"], database["NAME"]) == ("db", 5433, "opsdeck")
    assert env.redis_url("REDIS_URL") == "redis://cache:6379/2"
    assert Environment({}).redis_url("REDIS_URL") is None
    assert Environment({"REGISTRY_DRIFT_PSI_ALERT": " 0.3 "}).float("REGISTRY_DRIFT_PSI_ALERT", 0.25) == 0.3
    assert Environment({}).float("REGISTRY_DRIFT_PSI_ALERT", 0.25) == 0.25


def test_a_drift_alert_threshold_below_the_warning_stops_the_portal(tmp_path):
    environment = clean_environment(
        OPSDECK_DATA_DIR=str(tmp_path), REGISTRY_DRIFT_PSI_WARN="0.3", REGISTRY_DRIFT_PSI_ALERT="0.2"
    )
    result = manage("check", environment=environment)

    assert result.returncode != 0
    assert "REGISTRY_DRIFT_PSI_ALERT must be at least REGISTRY_DRIFT_PSI_WARN." in result.stderr


def test_bad_value_stops_the_portal_with_the_variable_named(tmp_path):
    result = manage("check", environment=clean_environment(OPSDECK_DATA_DIR=str(tmp_path), LOG_FORMAT="xml"))
    assert result.returncode != 0
    assert "LOG_FORMAT must be one of text, json" in result.stderr


def _production_environment(tmp_path, **overrides):
    required = {
        "DJANGO_SETTINGS_MODULE": "project.settings.production",
        "OPSDECK_DATA_DIR": str(tmp_path),
        "SECRET_KEY": LONG_SECRET,
        "AUDIT_SIGNING_KEY": "audit-" + "Zq8Rw3Tn" * 5,
        "BACKUP_ENCRYPTION_KEY": "5f" * 32,
        "REPORT_SIGNING_KEY": "-----BEGIN PRIVATE KEY-----\n" + "MC4CAQAw" * 6 + "\n-----END PRIVATE KEY-----",
        "ALLOWED_HOSTS": "opsdeck.example.com",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/opsdeck",
    }
    return clean_environment(**{**required, **overrides})


def test_production_settings_pass_deploy_check_without_warnings(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "DEBUG", environment=_production_environment(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    "missing",
    ["SECRET_KEY", "AUDIT_SIGNING_KEY", "BACKUP_ENCRYPTION_KEY", "REPORT_SIGNING_KEY", "ALLOWED_HOSTS", "DATABASE_URL"],
)
def test_production_settings_have_no_default_for_required_variables(tmp_path, missing):
    environment = _production_environment(tmp_path)
    del environment[missing]
    result = manage("check", environment=environment)
    assert result.returncode != 0
    assert f"{missing} must be set" in result.stderr


def test_production_secret_key_can_come_from_a_file(tmp_path):
    secret_file = tmp_path / "secret_key"
    secret_file.write_text(LONG_SECRET + "\n")
    environment = _production_environment(tmp_path, SECRET_KEY_FILE=str(secret_file))
    del environment["SECRET_KEY"]
    result = manage("check", "--deploy", "--fail-level", "DEBUG", environment=environment)
    assert result.returncode == 0, result.stderr


def test_production_refuses_a_short_secret_key(tmp_path):
    result = manage("check", environment=_production_environment(tmp_path, SECRET_KEY="short"))
    assert result.returncode != 0
    assert "SECRET_KEY must be at least 50 characters" in result.stderr


def test_local_settings_generate_and_keep_a_secret_key(tmp_path):
    environment = clean_environment(OPSDECK_DATA_DIR=str(tmp_path))
    first = manage(
        "shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY)", environment=environment
    )
    second = manage(
        "shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY)", environment=environment
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert len(first.stdout.strip()) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_json_log_format_writes_one_json_object_per_line(tmp_path):
    environment = clean_environment(OPSDECK_DATA_DIR=str(tmp_path), LOG_FORMAT="json")
    script = "import logging; logging.getLogger('opsdeck.check').warning('hello %s', 'world')"
    result = manage("shell", "-c", script, environment=environment)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stderr.strip().splitlines()[-1])
    assert (record["level"], record["logger"], record["message"]) == ("WARNING", "opsdeck.check", "hello world")
    assert "time" in record
