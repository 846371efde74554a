"""Pages: landing redirect, dashboard, error pages without tracebacks."""

from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.urls import include, path
from django.utils import timezone

from apps.backups.choices import BackupStatus
from project.urls import handler500  # noqa: F401 - the portal's own 500 handler serves this urlconf too
from tests.backups.test_backup_retention import backup_at


def _explode(request):
    raise RuntimeError("secret internal detail")


urlpatterns = [path("boom/", _explode), path("api/v1/boom/", _explode), path("", include("project.urls"))]


@pytest.mark.django_db
def test_home_sends_anonymous_users_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.url == "/accounts/login/"


@pytest.mark.django_db
def test_home_sends_signed_in_users_to_dashboard(client, viewer_user):
    client.force_login(viewer_user)
    assert client.get("/").url == "/dashboard/"


@pytest.mark.django_db
def test_login_page_signs_in_with_password(client, operator_user, password):
    response = client.post("/accounts/login/", {"username": operator_user.username, "password": password})
    assert response.status_code == 302
    assert response.url == "/dashboard/"
    assert "Dashboard" in client.get("/dashboard/").content.decode()


@pytest.mark.django_db
def test_login_page_rejects_a_wrong_password(client, operator_user):
    response = client.post("/accounts/login/", {"username": operator_user.username, "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


@pytest.mark.django_db
def test_dashboard_shows_readiness_and_maintenance_to_staff(client, admin_user, otp_login):
    backup_at(timezone.now() - timedelta(hours=1), BackupStatus.VERIFIED)
    otp_login(client, admin_user)
    page = client.get("/dashboard/").content.decode()
    assert 'id="readiness-status">ok<' in page
    assert "No maintenance task has run yet" in page


@pytest.mark.django_db
def test_dashboard_hides_operations_detail_from_non_staff(client, viewer_user):
    client.force_login(viewer_user)
    page = client.get("/dashboard/").content.decode()
    assert "Readiness" not in page
    assert 'data-path="/ws/events/"' in page


@pytest.mark.django_db
def test_unknown_page_is_a_plain_404(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "<h1>404</h1>" in response.content.decode()


@pytest.mark.django_db
@override_settings(ROOT_URLCONF=__name__)
def test_server_error_page_shows_no_traceback():
    client = Client(raise_request_exception=False)
    page = client.get("/boom/")
    assert page.status_code == 500
    assert "Internal server error" in page.content.decode()
    assert "secret internal detail" not in page.content.decode()
    assert "Traceback" not in page.content.decode()
    api = client.get("/api/v1/boom/")
    assert api.status_code == 500
    assert api.json() == {"detail": "Internal server error. The error has been logged.", "code": "server_error"}


def test_admin_is_titled_opsdeck(client):
    assert "Opsdeck administration" in client.get("/admin/login/").content.decode()
