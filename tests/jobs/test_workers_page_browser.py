"""The workers and queues page in Chromium at laptop and phone width: two workers (one draining, one running a
job), the queues, and the page's actions; no console error, no sideways scroll, no serious axe violation; the
drain button goes through the sudo window and leaves the worker draining."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.jobs.choices import JobStatus
from apps.jobs.models import WorkerPresence
from apps.quantum.models import QuantumJob
from apps.quantum.services import JobSpec, job_submit
from apps.readonly.models import HeldJob
from apps.readonly.services import maintenance_mode_enable
from tests.mfa import totp_code, totp_device_for
from tests.quantum_circuits import ghz_qasm2
from tests.shell_pages import LAPTOP, PHONE, PageProblems, Visitor, page_check, session_of
from tests.workers import worker_announced

pytestmark = [pytest.mark.browser, pytest.mark.pages, pytest.mark.django_db(transaction=True)]

PATH = "/system/workers/"
VERSIONS = {"python": "3.11.7", "Django": "5.2.19", "celery": "5.7.0", "qiskit-aer": "0.18.2", "torch": "2.13.0+cpu"}


@pytest.fixture
def workers_shown(operator_user):
    busy = worker_announced("celery@gpu-node-07.cluster.example.internal", queues=("quantum", "quantum-large"))
    idle = worker_announced("celery@cpu-node-01", queues=("default", "maintenance", "registry"))
    # Heard from "in the future": live for the whole test, though nothing announces them again.
    WorkerPresence.objects.filter(pk__in=[busy.pk, idle.pk]).update(
        concurrency=4, pid=4242, versions=VERSIONS, seen_at=timezone.now() + timedelta(minutes=10)
    )
    job = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(), name="GHZ-5 on the busy worker"))
    QuantumJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, worker=f"{busy.hostname} pid 4243", started_at=timezone.now()
    )
    return busy, idle, job


@pytest.fixture
def admin_visitor(admin_user) -> tuple[Visitor, str]:
    """The administrator's signed-in session and authenticator key, made before the browser starts (Playwright's
    event loop then keeps Django off the database)."""
    visitor = Visitor("admin", session_of(admin_user, second_factor=True))
    return visitor, totp_device_for(admin_user).key


@pytest.fixture
def idle_drained(workers_shown):
    busy, idle, job = workers_shown
    WorkerPresence.objects.filter(pk=idle.pk).update(
        draining_since=timezone.now(), drained_queues=["default", "maintenance", "registry"], queues=[]
    )
    return busy, idle, job


def test_workers_page_at_both_widths(asgi_live_server, idle_drained, admin_visitor, chromium):
    busy, idle, job = idle_drained
    visitor, _key = admin_visitor
    for name, viewport in (("desktop", LAPTOP), ("phone", PHONE)):
        context = visitor.context(chromium, asgi_live_server, viewport)
        page = context.new_page()
        problems = PageProblems(page)
        page.goto(asgi_live_server + PATH)
        expect(page.locator(f'[data-hostname="{busy.hostname}"] [data-cell="state"]')).to_have_text("active")
        expect(page.locator(f'[data-hostname="{idle.hostname}"] [data-cell="state"]')).to_have_text("draining")
        expect(page.locator(f'[data-job="quantum-{job.pk}"]')).to_contain_text("GHZ-5 on the busy worker")
        expect(page.locator("#queue-quantum [data-cell='consumers']")).to_have_text(busy.hostname)
        expect(page.locator(f'[aria-label="Drain {idle.hostname}"]')).to_have_count(0)
        expect(page.locator("#diagnostics-download")).to_be_visible()
        page_check(page, problems, f"admin-workers-{name}")
        context.close()


def test_drain_from_the_page_asks_for_the_password_and_says_why_nothing_was_done(
    asgi_live_server, workers_shown, admin_visitor, password, chromium
):
    """The announced worker is not really running: after re-authenticating, the drain finds no worker answering
    and the page says so (a real worker's drain is tested in test_workers_view.py)."""
    busy, _idle, _job = workers_shown
    visitor, key = admin_visitor
    context = visitor.context(chromium, asgi_live_server, LAPTOP)
    page = context.new_page()
    problems = PageProblems(page)
    page.goto(asgi_live_server + PATH)
    expect(page.locator("#sudo-note")).to_be_visible()

    page.click(f'[aria-label="Drain {busy.hostname}"]')
    page.wait_for_url("**/account/reauthenticate/**")
    expect(page.locator("#messages")).to_contain_text("Nothing was done: draining a worker needs your password")
    page.fill("#id_password", password)
    page.fill("#id_code", totp_code(key))
    page.click("main form [type=submit]")
    page.wait_for_url(f"**{PATH}")
    expect(page.locator("#sudo-note")).to_have_count(0)
    page.click(f'[aria-label="Drain {busy.hostname}"]')

    expect(page.locator("#messages")).to_contain_text(f"Worker {busy.hostname} did not confirm the drain")
    expect(page.locator(f'[data-hostname="{busy.hostname}"] [data-cell="state"]')).to_have_text("active")
    assert problems.items == []
    context.close()


@pytest.fixture
def jobs_held(workers_shown, operator_user):
    """Maintenance mode on, and two queued quantum jobs a worker took off the broker and held."""
    maintenance_mode_enable(message="Upgrade.", via="test")
    jobs = [job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(3), name=f"held {i}")) for i in range(2)]
    HeldJob.objects.bulk_create([HeldJob(kind="quantum", job_id=job.pk) for job in jobs])
    return QuantumJob.objects.get(pk=jobs[0].pk).queue


def test_jobs_held_during_maintenance_show_beside_the_queues_at_both_widths(
    asgi_live_server, jobs_held, admin_visitor, chromium
):
    queue = jobs_held
    visitor, _key = admin_visitor
    for name, viewport in (("desktop", LAPTOP), ("phone", PHONE)):
        context = visitor.context(chromium, asgi_live_server, viewport)
        page = context.new_page()
        problems = PageProblems(page)
        page.goto(asgi_live_server + PATH)
        expect(page.locator(f"#queue-{queue} [data-cell='held']")).to_have_text("2")
        expect(page.locator("#held-jobs")).to_have_text(
            "2 jobs held while maintenance mode is on (quantum 2): workers took them off the queues, so they are not "
            "counted as waiting. They start when maintenance ends."
        )
        page_check(page, problems, f"admin-workers-held-{name}")
        context.close()
