"""The Celery broker setting: Redis by default, RabbitMQ when CELERY_BROKER_URL says amqp://, and what the settings
say is what Celery uses."""

import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from project.settings.broker import EMBEDDED_BROKER_URL, broker_transport_options, broker_url
from project.settings.env import Environment
from tests.helpers import clean_environment, manage

REDIS = "redis://cache:6379/0"
RABBITMQ = "amqp://opsdeck:s3cret@rabbitmq:5672/opsdeck"


def _broker(variables: dict[str, str], redis_url: str | None = REDIS) -> str:
    return broker_url(Environment(variables), redis_url=redis_url)


def test_broker_is_redis_unless_celery_broker_url_says_otherwise():
    assert _broker({}) == REDIS
    assert _broker({"CELERY_BROKER_URL": ""}) == REDIS  # as Celery, which ignores an empty variable
    assert _broker({"CELERY_BROKER_URL": RABBITMQ}) == RABBITMQ
    assert _broker({"CELERY_BROKER_URL": "amqps://mq.example:5671/ops"}) == "amqps://mq.example:5671/ops"
    assert _broker({"CELERY_BROKER_URL": "rediss://other:6380/1"}) == "rediss://other:6380/1"


def test_broker_url_can_come_from_a_file(tmp_path):
    url_file = tmp_path / "broker_url"
    url_file.write_text(RABBITMQ + "\n")
    assert _broker({"CELERY_BROKER_URL_FILE": str(url_file)}) == RABBITMQ


@pytest.mark.parametrize("url", ["http://rabbitmq:15672/", "sqs://queue", "amqp:///vhost", "rabbitmq"])
def test_broker_url_of_another_kind_is_refused_naming_the_variable_and_the_schemes(url):
    with pytest.raises(
        ImproperlyConfigured, match="CELERY_BROKER_URL must be a redis://, rediss://, amqp:// or amqps://"
    ):
        _broker({"CELERY_BROKER_URL": url})


def test_broker_url_error_does_not_echo_the_password():
    with pytest.raises(ImproperlyConfigured) as error:
        _broker({"CELERY_BROKER_URL": "http://ops:hunter2@rabbitmq/"})
    assert "hunter2" not in str(error.value)


def test_embedded_mode_keeps_its_in_process_broker_and_refuses_another():
    assert _broker({}, redis_url=None) == EMBEDDED_BROKER_URL
    with pytest.raises(ImproperlyConfigured, match="CELERY_BROKER_URL needs REDIS_URL as well"):
        _broker({"CELERY_BROKER_URL": RABBITMQ}, redis_url=None)


@pytest.mark.parametrize("variable", ["CELERY_BROKER_READ_URL", "CELERY_BROKER_WRITE_URL", "CELERY_RESULT_BACKEND"])
def test_variables_celery_would_prefer_to_the_settings_are_refused(variable):
    with pytest.raises(ImproperlyConfigured, match=f"{variable} is not supported"):
        _broker({variable: RABBITMQ})


def test_broker_url_and_its_file_together_are_refused(tmp_path):
    url_file = tmp_path / "broker_url"
    url_file.write_text(REDIS)
    with pytest.raises(ImproperlyConfigured, match="CELERY_BROKER_URL or CELERY_BROKER_URL_FILE, not both"):
        _broker({"CELERY_BROKER_URL": RABBITMQ, "CELERY_BROKER_URL_FILE": str(url_file)})


def test_each_broker_gets_transport_options_of_its_own():
    redis = broker_transport_options(REDIS, task_time_limit=3600, priority_levels=10)
    rabbitmq = broker_transport_options(RABBITMQ, task_time_limit=3600, priority_levels=10)
    assert redis["visibility_timeout"] == 4200
    assert redis["priority_steps"] == list(range(10))
    assert rabbitmq == {"confirm_publish": True}
    assert broker_transport_options(EMBEDDED_BROKER_URL, task_time_limit=3600, priority_levels=10) == {
        "polling_interval": 0.01
    }


CELERY_CONFIGURATION = """
import json
from django.conf import settings
from project.celery import app
conf = app.conf
print(json.dumps({
    "settings": settings.CELERY_BROKER_URL,
    "celery": conf.broker_url,
    "options": conf.broker_transport_options,
    "queues": {queue.name: queue.queue_arguments for queue in conf.task_queues},
    "prefetch": conf.worker_prefetch_multiplier,
    "acks_late": conf.task_acks_late,
    "reject_on_worker_lost": conf.task_reject_on_worker_lost,
}))
"""


def _celery_configuration(tmp_path, **variables: str) -> dict:
    environment = clean_environment(OPSDECK_DATA_DIR=str(tmp_path), REDIS_URL="redis://127.0.0.1:6379/12", **variables)
    result = manage("shell", "--verbosity", "0", "-c", CELERY_CONFIGURATION, environment=environment)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_celery_uses_the_rabbitmq_the_settings_name(tmp_path):
    url_file = tmp_path / "broker_url"
    url_file.write_text(RABBITMQ)

    from_variable = _celery_configuration(tmp_path, CELERY_BROKER_URL=RABBITMQ)
    from_file = _celery_configuration(tmp_path, CELERY_BROKER_URL_FILE=str(url_file))

    for configuration in (from_variable, from_file):
        assert configuration["settings"] == configuration["celery"] == RABBITMQ
        assert configuration["options"] == {"confirm_publish": True}
        assert configuration["queues"]["quantum"] == {"x-max-priority": 9}
        assert (configuration["prefetch"], configuration["acks_late"], configuration["reject_on_worker_lost"]) == (
            1,
            True,
            True,
        )


def test_bad_broker_url_stops_the_portal_with_the_variable_named(tmp_path):
    environment = clean_environment(
        OPSDECK_DATA_DIR=str(tmp_path), REDIS_URL="redis://127.0.0.1:6379/12", CELERY_BROKER_URL="kafka://mq:9092"
    )
    result = manage("check", environment=environment)
    assert result.returncode != 0
    assert "CELERY_BROKER_URL must be a redis://, rediss://, amqp:// or amqps:// URL" in result.stderr
