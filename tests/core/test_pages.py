"""Pages: landing redirect, dashboard, error pages without tracebacks."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import include, path
from django.utils import timezone

from apps.backups.choices import BackupStatus
from apps.core.choices import MaintenanceStatus
from apps.core.models import MaintenanceRun
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
def test_system_page_shows_readiness_and_maintenance_to_staff(client, admin_user, otp_login):
    backup_at(timezone.now() - timedelta(hours=1), BackupStatus.VERIFIED)
    otp_login(client, admin_user)
    page = client.get("/system/").content.decode()
    assert 'id="readiness-status">ok<' in page
    assert "No maintenance task has run in the last 24 hours" in page


@pytest.mark.django_db
def test_system_page_groups_successful_runs_and_lists_failures_first(client, admin_user, otp_login):
    for message in ("Deleted 1 session.", "Deleted 2 sessions.", "Deleted 3 sessions."):
        MaintenanceRun.objects.create(
            task_name="maintenance.session_clear_expired", status=MaintenanceStatus.SUCCEEDED, message=message
        )
    MaintenanceRun.objects.create(
        task_name="maintenance.audit_verify", status=MaintenanceStatus.FAILED, message="Audit chain broken"
    )
    old = MaintenanceRun.objects.create(task_name="maintenance.old", status=MaintenanceStatus.FAILED)
    MaintenanceRun.objects.filter(pk=old.pk).update(started_at=timezone.now() - timedelta(days=2))
    otp_login(client, admin_user)
    page = client.get("/system/").content.decode()
    assert page.index('id="failed-runs"') < page.index('id="succeeded-runs"')
    assert "Audit chain broken" in page
    assert "maintenance.old" not in page  # older than the page's 24 hours
    succeeded = page[page.index('id="succeeded-runs"') :]
    assert succeeded.count("maintenance.session_clear_expired") == 1
    assert "<td>3 runs</td>" in succeeded
    assert "Deleted 3 sessions." in succeeded
    assert "Deleted 1 session." not in succeeded


@pytest.mark.django_db
def test_system_page_is_refused_to_non_staff(client, viewer_user):
    client.force_login(viewer_user)
    assert client.get("/system/").status_code == 403


@pytest.mark.django_db
def test_dashboard_leaves_operations_detail_to_the_system_page(client, admin_user, otp_login):
    otp_login(client, admin_user)
    page = client.get("/dashboard/").content.decode()
    assert 'id="readiness-status"' not in page
    assert 'id="maintenance"' not in page
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


@pytest.mark.django_db
def test_admin_is_titled_opsdeck(client, superuser, otp_login):
    otp_login(client, superuser)
    page = client.get("/admin/").content.decode()
    assert "| Opsdeck</title>" in page.replace("\n", "")
    assert 'aria-current="page"' in page  # the sidebar marks where one is


@pytest.mark.django_db
def test_admin_login_is_the_portal_sign_in(client):
    response = client.get("/admin/login/?next=/admin/backups/")
    assert response.status_code == 302
    assert response.url == "/accounts/login/?next=%2Fadmin%2Fbackups%2F"
    assert client.get("/admin/backups/", follow=True).redirect_chain[-1][0].startswith("/accounts/login/")


@pytest.mark.django_db
def test_admin_login_refuses_signed_in_users_who_are_not_staff(client, viewer_user):
    client.force_login(viewer_user)
    assert client.get("/admin/login/?next=/admin/").status_code == 403  # not a redirect loop with the sign-in


@pytest.mark.django_db
def test_every_page_links_the_favicon_which_is_served(client, viewer_user):
    sign_in = client.get("/accounts/login/").content.decode()
    assert 'rel="icon" href="/static/favicon.svg" type="image/svg+xml"' in sign_in
    client.force_login(viewer_user)
    assert 'href="/static/favicon.svg"' in client.get("/dashboard/").content.decode()
    assert (settings.BASE_DIR / "static" / "favicon.svg").read_text().startswith("<svg")


@pytest.mark.django_db
def test_the_sidebars_sign_out_ends_the_session_and_returns_to_the_sign_in_page(client, viewer_user):
    client.force_login(viewer_user)
    page = client.get("/dashboard/").content.decode()
    assert 'action="/accounts/logout/"' in page  # the user menu at the foot of the sidebar
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response.url == "/accounts/login/"
    assert client.get("/dashboard/").status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "title"), [("/dashboard/", "Dashboard"), ("/registry/", "Model registry"), ("/account/", "Your account")]
)
def test_the_header_names_the_page_rather_than_welcoming_the_user(client, viewer_user, path, title):
    client.force_login(viewer_user)
    page = client.get(path).content.decode()
    assert f'id="page-heading">{title}</p>' in page
    assert f"{title} · Opsdeck</title>" in page
    assert "Welcome" not in page
