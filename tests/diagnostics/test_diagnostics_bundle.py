"""The diagnostics bundle: `manage.py diagnose --output`, the staff download (page and API), what it holds, and
that no planted secret appears in any of its files, in any form."""

import io
import json
import secrets
import zipfile
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.tokens import token_create
from apps.audit.models import AuditEvent
from apps.audit.services import event_record
from apps.core.choices import MaintenanceStatus, Role
from apps.core.models import MaintenanceRun
from apps.diagnostics import services
from apps.diagnostics.services import SECTIONS, diagnostics_bundle_build
from apps.notifications.models import WebhookEndpoint
from apps.notifications.webhook_secrets import secret_new, secret_seal
from apps.quantum.services import JobSpec, job_submit
from apps.readonly.services import maintenance_jobs_hold
from tests.factories import UserFactory
from tests.helpers import PROJECT_DIR, api_error, child_database_url, clean_environment, manage
from tests.mfa import otp_force_login, sudo_force_login, totp_device_create
from tests.quantum_circuits import ghz_qasm2
from tests.workers import worker_announced

MEMBERS = {"README.txt", *SECTIONS}


def _members(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _forms(secret: str) -> list[bytes]:
    return [form.encode() for form in (secret, json.dumps(secret)[1:-1], quote(secret, safe=""))]


def _assert_nowhere(members: dict[str, bytes], planted: dict[str, str]) -> None:
    for name, data in members.items():
        for what, secret in planted.items():
            for form in _forms(secret):
                assert form not in data, f"{what} appears in {name}"


def _planted(label: str) -> str:
    return f"{label}-{secrets.token_urlsafe(24)}"


def test_no_planted_secret_appears_in_any_file_of_the_bundle(settings, monkeypatch, admin_user, transactional_db):
    planted = {
        "SECRET_KEY": _planted("django-secret"),
        "database password": _planted("db+pw/with:odd@chars"),
        "OIDC client secret": _planted("oidc"),
        "email password": _planted("smtp"),
        "backup key": secrets.token_hex(32),
        "environment token": _planted("env-token"),
    }
    settings.SECRET_KEY = planted["SECRET_KEY"]
    settings.OIDC_RP_CLIENT_SECRET = planted["OIDC client secret"]
    settings.EMAIL_HOST_PASSWORD = planted["email password"]
    settings.BACKUP_ENCRYPTION_KEY = planted["backup key"]
    # PostgreSQL trusts local connections here, so a password in the settings changes nothing but what is shown.
    monkeypatch.setitem(settings.DATABASES["default"], "PASSWORD", planted["database password"])
    monkeypatch.setenv("SUPPORT_SYSTEM_TOKEN", planted["environment token"])
    webhook_secret = secret_new()
    planted["webhook secret"] = webhook_secret
    WebhookEndpoint.objects.create(
        name="ops",
        url="https://hooks.example.com/in",
        events=["job.failed"],
        owner=admin_user,
        secret_encrypted=secret_seal(webhook_secret),
    )
    totp_device_create(admin_user)
    planted["API token"] = token_create(owner=admin_user, name="ci", scopes=["read"], expires_in_days=1).secret
    # Secrets where no name says so: in a message, inside a URL, percent-encoded.
    quoted_password = quote(planted["database password"], safe="")
    MaintenanceRun.objects.create(
        task_name="maintenance.leaky",
        status=MaintenanceStatus.FAILED,
        message=(
            f"could not reach postgres://ops:{quoted_password}@db.internal/opsdeck with key {planted['SECRET_KEY']}; "
            f"sso said {planted['OIDC client secret']}; hook {webhook_secret}; env {planted['environment token']}; "
            f"token {planted['API token']}; backup {planted['backup key']}; "
            f"broker amqp://svc:short1@mq.internal:5672/ops"
        ),
    )
    worker_announced("celery@diag")

    bundle = diagnostics_bundle_build(actor=admin_user, via="api")

    members = _members(bundle.content)
    assert set(members) == MEMBERS
    _assert_nowhere(members, planted)
    # Even a password shorter than any value search is masked inside its URL.
    assert b"short1" not in members["maintenance_runs.json"]
    runs = json.loads(members["maintenance_runs.json"])
    assert "postgres://ops:********@db.internal/opsdeck" in runs["failures"][0]["message"]
    shown = json.loads(members["settings.json"])["settings"]
    assert shown["SECRET_KEY"] == "********"
    assert shown["DATABASES"]["default"]["PASSWORD"] == "********"
    assert shown["OIDC_RP_CLIENT_SECRET"] == "********"
    # Settings about secrets, rather than secrets, stay readable.
    assert shown["PASSWORD_RESET_TIMEOUT_MINUTES"] == settings.PASSWORD_RESET_TIMEOUT_MINUTES
    assert shown["DATABASES"]["default"]["NAME"] == settings.DATABASES["default"]["NAME"]


def test_the_bundle_says_how_the_portal_runs_with_counts_only(admin_user, operator_user, viewer_user, transactional_db):
    worker_announced("celery@diag", queues=("quantum",))
    MaintenanceRun.objects.create(task_name="maintenance.prune", status=MaintenanceStatus.FAILED, message="disk full")
    held = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(), name="held"))
    maintenance_jobs_hold(kind="quantum", job_ids=[held.pk])

    members = _members(diagnostics_bundle_build(actor=admin_user, via="page").content)

    data = {name: json.loads(content) for name, content in members.items() if name.endswith(".json")}
    assert data["versions.json"]["portal"]["python"]
    assert data["versions.json"]["portal"]["qiskit-aer"] != "not installed"
    assert data["versions.json"]["servers"]["database"].startswith("PostgreSQL ")
    assert data["versions.json"]["servers"]["redis"].startswith("Redis ")
    assert data["health.json"]["status"] in ("ok", "degraded", "down")
    assert data["migrations.json"]["unapplied_total"] == 0
    assert data["migrations.json"]["apps"]["jobs"]["applied"] >= 3
    queues = {queue["name"]: queue for queue in data["queues.json"]["queues"]}
    assert set(queues) >= {"default", "quantum", "maintenance"}
    assert (queues["quantum"]["held_for_maintenance"], queues["default"]["held_for_maintenance"]) == (1, 0)
    assert [worker["hostname"] for worker in data["workers.json"]["workers"]] == ["celery@diag"]
    assert data["maintenance_runs.json"]["failures"][0]["message"] == "disk full"
    assert data["disk.json"]["filesystem"]["total_bytes"] > 0
    assert data["audit_chain.json"]["ok"] is True
    assert data["users.json"]["per_role"][Role.ADMIN] == 1
    assert data["users.json"]["per_role"][Role.OPERATOR] == 1
    # Counts only: no one's name, except who made the bundle in its README (as in the audit trail).
    for content in members.values():
        assert operator_user.username.encode() not in content
        assert viewer_user.username.encode() not in content
    assert b"alice-admin" in members["README.txt"]  # who made it, as the audit trail says
    assert AuditEvent.objects.filter(action="diagnostics.bundle.created", actor_username="alice-admin").count() == 1


def test_diagnose_command_writes_the_bundle_with_planted_environment_secrets(settings, tmp_path, transactional_db):
    db_password = _planted("child-db-pw")
    secret_key = _planted("child-secret-key")
    oidc_secret = _planted("child-oidc")
    environment = clean_environment(
        DJANGO_SETTINGS_MODULE="project.settings.test",
        OPSDECK_DATA_DIR=str(tmp_path / "data"),
        TEST_DATABASE_URL=child_database_url().replace("postgres@", f"postgres:{quote(db_password, safe='')}@"),
        TEST_REDIS_URL=settings.REDIS_URL,
        SECRET_KEY=secret_key,
        OIDC_ISSUER="https://sso.example.com/realms/ops",
        OIDC_CLIENT_ID="opsdeck",
        OIDC_CLIENT_SECRET=oidc_secret,
    )
    output = tmp_path / "bundle.zip"

    result = manage("diagnose", "--output", str(output), environment=environment)

    assert result.returncode == 0, result.stderr
    assert f"Wrote {output}" in result.stdout
    members = _members(output.read_bytes())
    assert set(members) == MEMBERS
    _assert_nowhere(members, {"database password": db_password, "SECRET_KEY": secret_key, "OIDC": oidc_secret})
    assert json.loads(members["settings.json"])["settings"]["OIDC_RP_CLIENT_ID"] == "opsdeck"
    [event] = AuditEvent.objects.filter(action="diagnostics.bundle.created")
    assert event.changes["via"] == "cli"

    again = manage("diagnose", "--output", str(output), environment=environment)
    wrong = manage("diagnose", "--output", str(tmp_path / "missing" / "b.zip"), environment=environment)
    assert again.returncode != 0
    assert "exists; pass --force" in again.stderr
    assert wrong.returncode != 0
    assert "does not exist" in wrong.stderr
    assert (PROJECT_DIR / "manage.py").exists()


def test_staff_download_the_bundle_from_the_page_inside_the_sudo_window(admin_user, transactional_db):
    client = Client()
    otp_force_login(client, admin_user)
    url = reverse("diagnostics_page:download")

    outside = client.get(url)
    assert outside.status_code == 302
    assert outside.url.startswith(reverse("sudo"))
    sudo_force_login(client, admin_user)
    inside = client.get(url)

    assert inside.status_code == 200
    assert inside["Content-Type"] == "application/zip"
    assert inside["Content-Disposition"].startswith('attachment; filename="opsdeck-diagnostics-')
    assert set(_members(inside.content)) == MEMBERS
    [event] = AuditEvent.objects.filter(action="diagnostics.bundle.created")
    assert (event.actor_username, event.changes["via"]) == ("alice-admin", "page")


def test_the_api_gives_the_bundle_to_staff_tokens_and_refuses_everyone_else(api_client, admin_user, transactional_db):
    totp_device_create(admin_user)
    secret = token_create(owner=admin_user, name="support", scopes=["read"], expires_in_days=1).secret

    response = api_client.get("/api/v1/core/diagnostics/", HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert response.status_code == 200
    assert set(_members(response.content)) == MEMBERS
    for role in (Role.VIEWER, Role.OPERATOR, Role.COMPLIANCE):
        user = UserFactory(username=f"someone-{role}", roles=[role])
        totp_device_create(user)
        token = token_create(owner=user, name="x", scopes=["read"], expires_in_days=1).secret
        refused = api_client.get("/api/v1/core/diagnostics/", HTTP_AUTHORIZATION=f"Bearer {token}")
        api_error(refused, 403, "permission_denied")
        client = Client()
        otp_force_login(client, user)
        assert client.get(reverse("diagnostics_page:download")).status_code == 403
    otp_force_login(api_client, admin_user)
    session = api_client.get("/api/v1/core/diagnostics/")
    api_error(session, 403, "reauthentication_required")
    assert AuditEvent.objects.filter(action="diagnostics.bundle.created").count() == 1


@pytest.fixture(autouse=True)
def _data_dir_exists(settings):
    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)


def test_the_audit_chain_check_is_bounded_on_a_long_trail(monkeypatch, admin_user, transactional_db):
    for number in range(30):
        event_record(action="test.filler", actor=admin_user, object_type="test", object_id=str(number))
    monkeypatch.setattr(services, "AUDIT_VERIFY_MAX_EVENTS", 10)

    chain = services.section_audit_chain()

    assert chain["ok"] is True
    assert chain["scope"].startswith("the newest 10 events")
    assert chain["verified_events"] <= 11
    assert chain["events_in_database"] >= 30
