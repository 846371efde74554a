"""API v1 conventions: one error shape, pagination limits, filters, throttling."""

import pytest
from django.core.cache import cache
from rest_framework.throttling import UserRateThrottle

from apps.core.choices import MaintenanceStatus
from apps.core.models import MaintenanceRun

pytestmark = pytest.mark.django_db


def _assert_error_shape(response, status: int, code: str):
    assert response.status_code == status
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str)
    assert body["detail"]


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("get", "/api/v1/does-not-exist/", 404, "not_found"),
        ("get", "/api/v1/core/maintenance-runs/999999/", 404, "not_found"),
        ("delete", "/api/v1/core/maintenance-runs/", 405, "method_not_allowed"),
    ],
    ids=["unknown-path", "missing-object", "wrong-method"],
)
def test_errors_have_the_json_error_shape(api_client, admin_user, method, path, status, code):
    api_client.force_authenticate(admin_user)
    _assert_error_shape(getattr(api_client, method)(path), status, code)


def test_anonymous_request_is_refused_in_json(api_client):
    response = api_client.get("/api/v1/accounts/me/")
    _assert_error_shape(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_user_without_access_is_refused_in_json(api_client, outsider_user):
    api_client.force_authenticate(outsider_user)
    _assert_error_shape(api_client.get("/api/v1/core/maintenance-runs/"), 403, "permission_denied")


def test_api_root_links_every_entry_point(api_client, viewer_user):
    api_client.force_authenticate(viewer_user)
    body = api_client.get("/api/v1/").json()
    assert body["me"].endswith("/api/v1/accounts/me/")
    assert body["maintenance-runs"].endswith("/api/v1/core/maintenance-runs/")
    assert body["docs"].endswith("/api/v1/docs/")


def test_me_shows_roles(api_client, operator_user):
    api_client.force_authenticate(operator_user)
    body = api_client.get("/api/v1/accounts/me/").json()
    assert body["username"] == "oscar-operator"
    assert body["roles"] == ["operator"]


def _make_runs(count: int, status=MaintenanceStatus.SUCCEEDED):
    MaintenanceRun.objects.bulk_create(MaintenanceRun(task_name=f"task.{n}", status=status) for n in range(count))


def test_list_is_paginated_with_page_size(api_client, admin_user):
    _make_runs(7)
    api_client.force_authenticate(admin_user)
    body = api_client.get("/api/v1/core/maintenance-runs/", {"page_size": 3, "page": 2}).json()
    assert body["count"] == 7
    assert len(body["results"]) == 3
    assert body["next"]
    assert body["previous"]


def test_page_size_over_the_maximum_is_refused_naming_the_limit(api_client, admin_user, settings):
    settings.API_MAX_PAGE_SIZE = 20
    api_client.force_authenticate(admin_user)
    response = api_client.get("/api/v1/core/maintenance-runs/", {"page_size": 21})
    _assert_error_shape(response, 400, "invalid")
    body = response.json()
    assert body["errors"]["page_size"] == ["Must be a whole number from 1 to 20."]
    assert body["detail"] == "page_size: Must be a whole number from 1 to 20."


def test_list_filters_by_status(api_client, admin_user):
    _make_runs(2)
    _make_runs(3, status=MaintenanceStatus.FAILED)
    api_client.force_authenticate(admin_user)
    body = api_client.get("/api/v1/core/maintenance-runs/", {"status": "failed"}).json()
    assert body["count"] == 3
    assert {run["status"] for run in body["results"]} == {"failed"}


def test_too_many_requests_get_json_429(api_client, viewer_user, monkeypatch):
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/min", "anon": "3/min"})
    cache.clear()
    api_client.force_authenticate(viewer_user)
    statuses = [api_client.get("/api/v1/accounts/me/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = api_client.get("/api/v1/accounts/me/")
    _assert_error_shape(response, 429, "throttled")
    assert 0 < response.json()["retry_after_seconds"] <= 60
