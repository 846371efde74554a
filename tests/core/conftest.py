"""The portal's main pages with something on them, and the signed-in visitors of each role who check them."""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest

from apps.accounts.tokens import token_create
from apps.backups.choices import BackupTrigger
from apps.backups.services import backup_create
from apps.compliance.choices import ReportFormat, ReportKind
from apps.compliance.services import previous_month, report_request
from apps.core.services import periodic_tasks_sync
from apps.quantum.services import JobSpec, job_submit
from apps.registry.services import model_register, version_upload, version_validate
from project.schedule import SCHEDULE
from tests.helpers import PortalProcess, WorkerProcess, child_database_url, free_port
from tests.quantum_circuits import ghz_qasm2
from tests.registry_models import build_tiny_classifier, pack_zip
from tests.shell_pages import Visitor, session_of


@dataclass(frozen=True)
class PortalPages:
    """The paths of the pages of one object of each kind."""

    job: str
    model: str
    backup: str


@pytest.fixture
def portal_pages(
    roles, registry_storage, backup_dir, tmp_path, admin_user, operator_user, compliance_user
) -> PortalPages:
    """A quantum job, a validated model version, a stored backup, a report, an API token and the beat schedule:
    every main page and admin list then has rows to show."""
    job = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(), name="GHZ-5"))
    model = model_register(owner=operator_user, name="sentiment", task="text-classification", tags=["nlp"])
    artifact = pack_zip(build_tiny_classifier(tmp_path / "model"))
    version = version_upload(model=model, upload=io.BytesIO(artifact), actor=operator_user)
    version_validate(version_id=version.pk)
    backup = backup_create(trigger=BackupTrigger.USER, actor=admin_user)
    start, end = previous_month()
    report_request(
        kind=ReportKind.ACCESS_REVIEW, fmt=ReportFormat.PDF, period_start=start, period_end=end, actor=compliance_user
    )
    token_create(owner=operator_user, name="Nightly evaluation", scopes=["read"], expires_in_days=30)
    periodic_tasks_sync(schedule=SCHEDULE)
    return PortalPages(
        job=f"/dashboard/jobs/{job.pk}/", model=f"/registry/{model.name}/", backup=f"/backups/{backup.pk}/"
    )


@pytest.fixture
def visitors(portal_pages, admin_user, operator_user, viewer_user, compliance_user) -> list[Visitor]:
    """One visitor per role with the main pages that role may open (name, path, the sidebar link marked)."""
    return [
        Visitor(
            "admin",
            session_of(admin_user, second_factor=True),
            [
                ("dashboard", "/dashboard/", "Dashboard"),
                ("job", portal_pages.job, "Dashboard"),
                ("compliance", "/compliance/", "Compliance"),
                ("registry", "/registry/", "Registry"),
                ("model", portal_pages.model, "Registry"),
                ("backups", "/backups/", "Backups"),
                ("backup", portal_pages.backup, "Backups"),
                ("account", "/account/", "Account"),
                ("system", "/system/", "System"),
                ("workers", "/system/workers/", "Workers"),
                ("admin-index", "/admin/", "Administration"),
            ],
        ),
        Visitor(
            "operator",
            # Without an authenticator yet: the set-up page is one of those checked.
            session_of(operator_user, second_factor=False),
            [
                ("dashboard", "/dashboard/", "Dashboard"),
                ("job", portal_pages.job, "Dashboard"),
                ("registry", "/registry/", "Registry"),
                ("model", portal_pages.model, "Registry"),
                ("account", "/account/", "Account"),
                ("mfa-enroll", "/account/mfa/enroll/", "Account"),
            ],
        ),
        Visitor(
            "viewer",
            session_of(viewer_user, second_factor=False),
            [
                ("dashboard", "/dashboard/", "Dashboard"),
                ("job", portal_pages.job, "Dashboard"),
                ("registry", "/registry/", "Registry"),
                ("model", portal_pages.model, "Registry"),
                ("account", "/account/", "Account"),
            ],
        ),
        Visitor(
            "compliance",
            session_of(compliance_user, second_factor=True),
            [
                ("dashboard", "/dashboard/", "Dashboard"),
                ("compliance", "/compliance/", "Compliance"),
                ("registry", "/registry/", "Registry"),
                ("model", portal_pages.model, "Registry"),
                ("backups", "/backups/", "Backups"),
                ("backup", portal_pages.backup, "Backups"),
                ("account", "/account/", "Account"),
            ],
        ),
    ]


@pytest.fixture
def staff_visitors(portal_pages, admin_user, superuser) -> list[Visitor]:
    """The administrator and the superuser, who open the admin (its pages are the test's to list)."""
    return [
        Visitor("admin", session_of(admin_user, second_factor=True)),
        Visitor("superuser", session_of(superuser, second_factor=True)),
    ]


@pytest.fixture
def web_and_worker_hosts(transactional_db, tmp_path, settings):
    """A web host (`runportal`) and a worker host (`celery worker` on default, quantum and maintenance, so that
    registry messages wait) with its own metrics endpoint, each with its own metrics directory; yields the portal
    and the worker's metrics URL."""
    worker_port = free_port()
    (tmp_path / "worker-metrics").mkdir()
    worker = WorkerProcess(
        "metrics",
        tmp_path / "worker-metrics",
        queues=("default", "quantum", "maintenance"),
        WORKER_METRICS_PORT=str(worker_port),
        WORKER_METRICS_ADDRESS="127.0.0.1",
    )
    portal = PortalProcess(
        tmp_path / "web",
        DATABASE_URL=child_database_url(),
        REDIS_URL=settings.REDIS_URL,
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "web-metrics"),
    )
    portal.start()
    yield portal, f"http://127.0.0.1:{worker_port}/metrics"
    portal.kill()
    worker.stop()
