"""The Content-Security-Policy on every page: a fresh nonce per response, the strict directives, the admin's and the
browsable API's narrow allowances, the OIDC provider in form-action, and the report-only switch."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import unfold
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from apps.readonly.services import maintenance_mode_enable
from project.settings.browser_access import csp_settings
from project.settings.env import Environment
from tests.core.test_settings_environment import _production_environment
from tests.helpers import manage
from tests.mfa import otp_force_login

NONCE = re.compile(r"'nonce-([A-Za-z0-9+/=]+)'")


def policy(response) -> dict[str, list[str]]:
    """The response's Content-Security-Policy as {directive: [sources]}."""
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


def nonce_of(response) -> str:
    match = NONCE.search(" ".join(policy(response)["script-src"]))
    assert match, response["Content-Security-Policy"]
    return match.group(1)


@pytest.fixture
def staff_client(client, roles, admin_user):
    otp_force_login(client, admin_user)
    return client


PAGES = [
    "/accounts/login/",  # signed out
    "/dashboard/",
    "/registry/",
    "/backups/",
    "/compliance/",
    "/account/",
    "/system/",
    "/system/workers/",
    "/api/v1/docs/",
    "/admin/",
    "/admin/audit/auditevent/",
    "/admin/readonly/maintenancewindow/",
    "/admin/readonly/maintenancewindow/add/",
    "/no-such-page/",
]


@pytest.mark.django_db
@pytest.mark.parametrize("path", PAGES)
def test_every_html_page_carries_the_policy_with_a_nonce_of_its_own(client, roles, admin_user, path):
    if path != "/accounts/login/":
        otp_force_login(client, admin_user)
    first, second = client.get(path), client.get(path)
    assert first["Content-Type"].startswith("text/html"), path
    assert first.status_code in (200, 404), (path, first.status_code)
    assert nonce_of(first) != nonce_of(second)
    assert_nothing_inline_without_the_nonce(first, path)


def assert_nothing_inline_without_the_nonce(response, path: str) -> None:
    """The nonce the page's own tags carry is the one its header names: nothing inline runs without it."""
    body = response.content.decode()
    for tag in re.findall(r"<(?:script|style)\b[^>]*>", body):
        if "src=" in tag or 'type="application/json"' in tag:
            continue
        assert f'nonce="{nonce_of(response)}"' in tag, (path, tag)
    assert not re.search(r"\son[a-z]+=\"", body), f"{path} has an inline event handler"


@pytest.mark.django_db
def test_maintenance_banner_and_refusal_page_comply_with_the_policy(staff_client):
    maintenance_mode_enable(message="Database upgrade", until=timezone.now() + timedelta(hours=1))
    page = staff_client.get("/dashboard/")
    assert b"Database upgrade" in page.content
    assert_nothing_inline_without_the_nonce(page, "/dashboard/ in maintenance")
    refused = staff_client.post("/account/", {}, HTTP_ACCEPT="text/html")
    assert refused.status_code == 503
    assert refused["Content-Type"].startswith("text/html")
    assert_nothing_inline_without_the_nonce(refused, "the maintenance refusal page")


@pytest.mark.django_db
def test_the_browsable_apis_code_colours_carry_the_nonce(staff_client):
    response = staff_client.get("/api/v1/", HTTP_ACCEPT="text/html")
    assert response["Content-Type"].startswith("text/html")
    assert f'<style nonce="{nonce_of(response)}">' in response.content.decode()


@pytest.mark.django_db
def test_portal_pages_allow_no_inline_script_style_or_plugins(staff_client):
    directives = policy(staff_client.get("/dashboard/"))
    assert directives["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in directives["script-src"]
    assert [source for source in directives["script-src"] if not source.startswith("'nonce-")] == [
        "'self'",
        "'unsafe-eval'",  # the admin theme's Alpine.js, README "Browser API access"
    ]
    assert directives["script-src-attr"] == ["'none'"]
    assert "'unsafe-inline'" not in directives["style-src"]
    assert directives["style-src-attr"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["base-uri"] == ["'self'"]
    assert directives["form-action"] == ["'self'"]
    assert directives["connect-src"] == ["'self'"]
    assert "Content-Security-Policy-Report-Only" not in staff_client.get("/dashboard/")


@pytest.mark.django_db
def test_only_the_admin_and_the_browsable_api_may_set_style_attributes(staff_client):
    assert policy(staff_client.get("/admin/"))["style-src-attr"] == ["'unsafe-inline'"]
    assert policy(staff_client.get("/api/v1/", HTTP_ACCEPT="text/html"))["style-src-attr"] == ["'unsafe-inline'"]
    for path in ("/dashboard/", "/accounts/login/", "/registry/"):
        assert policy(staff_client.get(path))["style-src-attr"] == ["'none'"], path
    # Everything else stays as strict there.
    admin = policy(staff_client.get("/admin/"))
    assert "'unsafe-inline'" not in admin["script-src"] + admin["style-src"]


@pytest.mark.django_db
def test_api_answers_carry_the_policy_too(staff_client):
    response = staff_client.get("/api/v1/", HTTP_ACCEPT="application/json")
    assert response["Content-Type"].startswith("application/json")
    assert policy(response)["default-src"] == ["'self'"]


@pytest.mark.django_db
def test_the_oidc_providers_origin_joins_form_action_while_single_sign_on_is_on(client, settings):
    settings.OIDC_ISSUER = "https://sso.example.com:8443/realms/ops"
    assert policy(client.get("/accounts/login/"))["form-action"] == ["'self'", "https://sso.example.com:8443"]
    settings.OIDC_ISSUER = ""
    assert policy(client.get("/accounts/login/"))["form-action"] == ["'self'"]


def test_report_only_is_off_unless_asked_for():
    assert set(csp_settings(Environment({}))) == {
        "CONTENT_SECURITY_POLICY",
        "CONTENT_SECURITY_POLICY_PATH_ALLOWANCES",
    }
    trial = csp_settings(Environment({"CSP_REPORT_ONLY": "true"}))
    assert "CONTENT_SECURITY_POLICY" not in trial
    assert trial["CONTENT_SECURITY_POLICY_REPORT_ONLY"]["DIRECTIVES"]["script-src-attr"] == ["'none'"]
    assert settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["frame-ancestors"] == ["'none'"]


def test_production_refuses_a_report_only_policy(tmp_path):
    result = manage("check", environment=_production_environment(tmp_path, CSP_REPORT_ONLY="true"))
    assert result.returncode != 0
    assert "CSP_REPORT_ONLY must be off with project.settings.production" in result.stderr


SKELETON_ADDITIONS = (
    ' nonce="{{ request.csp_nonce }}"',
    """        <link href="{% static 'css/shell.css' %}" rel="stylesheet">\n""",
    """        <meta name="htmx-config" content='{"includeIndicatorStyles": false, "allowEval": false}'>\n""",
)


def test_the_copied_unfold_skeleton_differs_from_the_packages_only_by_its_csp_additions():
    """templates/unfold/layouts/skeleton.html is django-unfold's own plus a nonce, the shell's style sheet and
    htmx's configuration: an upgrade that changes the package's copy must be copied again."""
    package = Path(unfold.__file__).parent / "templates" / "unfold" / "layouts" / "skeleton.html"
    ours = Path(settings.BASE_DIR) / "templates" / "unfold" / "layouts" / "skeleton.html"
    ours_text = re.sub(r"\{% comment %\}.*?\{% endcomment %\}\n", "", ours.read_text(), count=1, flags=re.S)
    for addition in SKELETON_ADDITIONS:
        assert addition in ours_text
        ours_text = ours_text.replace(addition, "")
    assert ours_text == package.read_text()


@pytest.mark.django_db
def test_the_periodic_task_form_runs_no_inline_script(staff_client):
    task = PeriodicTask.objects.create(
        name="nightly", task="maintenance.audit_verify", crontab=CrontabSchedule.objects.create(minute="0", hour="3")
    )
    response = staff_client.get(f"/admin/django_celery_beat/periodictask/{task.pk}/change/")
    assert response.status_code == 200
    assert "periodic-task-overrides" not in response.content.decode()
