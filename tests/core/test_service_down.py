"""A service the portal needs is down: a clear 503 with Retry-After, never a 500 or a traceback."""

import json
import urllib.error
import urllib.request

import pytest
from django.test import Client

from tests.helpers import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_down(settings):
    """The cache (throttle counters, sessions' neighbours) on a port where nothing listens."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 1},
        }
    }


def test_api_answers_503_with_retry_after_when_redis_is_down(redis_down):
    response = Client(raise_request_exception=False).get("/api/v1/quantum/jobs/")

    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"
    assert int(response["Retry-After"]) > 0


def test_running_portal_answers_503_over_http_when_redis_is_down(asgi_live_server, redis_down):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(asgi_live_server + "/api/v1/quantum/jobs/", timeout=15)

    assert refused.value.code == 503
    assert refused.value.headers["Retry-After"]
    body = json.load(refused.value)
    assert body["code"] == "unavailable"
    assert "Traceback" not in json.dumps(body)
