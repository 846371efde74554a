"""The workers and queues view with two real `celery worker` processes on different queues: both show with their
queues, concurrency, versions and running jobs; a drained worker takes no more jobs (the other runs them); a job is
cancelled from the view; and only staff (administrators, for the actions) get through any door."""

from datetime import timedelta
from functools import partial

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.accounts.tokens import token_create
from apps.audit.models import AuditEvent
from apps.core.choices import Role
from apps.jobs.choices import FINISHED_STATUSES, JobStatus
from apps.jobs.models import WorkerPresence
from apps.jobs.selectors import queue_depths
from apps.jobs.workers import worker_announce
from apps.quantum.services import JobSpec, job_submit
from project.celery import app as celery_app
from tests.brokers import celery_broker
from tests.factories import UserFactory
from tests.helpers import WorkerProcess, api_error, job_wait, wait_for
from tests.mfa import otp_force_login, sudo_force_login, totp_device_create
from tests.quantum_circuits import ghz_qasm2, slow_qasm2
from tests.workers import worker_announced

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def broker(request):
    """The test settings' broker, or (parametrized "amqp") RabbitMQ on this run's own virtual host."""
    if getattr(request, "param", "redis") == "redis":
        yield settings.CELERY_BROKER_URL
        return
    with celery_broker(request.getfixturevalue("rabbitmq_url")) as url:
        yield url


WORKERS_URL = "/api/v1/core/workers/"
DRAIN_URL = "/api/v1/core/workers/drain/"

# This file's deadline for what it waits for.
_wait_for = partial(wait_for, timeout=90)


def _token_headers(user) -> dict:
    totp_device_create(user)  # staff need an authenticator before a token is accepted
    issued = token_create(owner=user, name="ops", scopes=["read", "write"], expires_in_days=1)
    return {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}


def _workers_by_host(client, headers) -> dict:
    response = client.get(WORKERS_URL, **headers)
    assert response.status_code == 200, response.content
    return {worker["hostname"]: worker for worker in response.json()["workers"]}


@pytest.fixture
def two_workers(transactional_db, broker, tmp_path):
    """``first`` takes quantum and registry jobs, ``second`` quantum and default ones (on the test's broker)."""
    workers = [
        WorkerProcess("first", tmp_path, queues=("quantum", "registry")),
        WorkerProcess("second", tmp_path, queues=("quantum", "default")),
    ]
    yield workers
    for worker in workers:
        worker.stop()


@pytest.mark.parametrize("broker", ["redis", "amqp"], indirect=True)
def test_view_shows_two_workers_and_a_drained_one_takes_no_more_jobs(
    two_workers, api_client, admin_user, operator_user
):
    first, second = two_workers
    headers = _token_headers(admin_user)
    shown = _wait_for(
        lambda: (
            (found := _workers_by_host(api_client, headers))
            and {first.hostname, second.hostname} <= set(found)
            and found
        ),
        "both workers to announce themselves",
    )
    assert shown[first.hostname]["queues"] == ["quantum", "registry"]
    assert shown[second.hostname]["queues"] == ["default", "quantum"]
    for worker in (first, second):
        row = shown[worker.hostname]
        assert row["state"] == "active"
        assert row["concurrency"] == 1
        assert row["pid"] == worker.process.pid
        assert {"python", "Django", "celery", "qiskit-aer", "torch"} <= set(row["versions"])
        assert row["versions"]["celery"] != "not installed"
        assert row["last_heartbeat"]
    queues = {queue["name"]: queue for queue in api_client.get(WORKERS_URL, **headers).json()["queues"]}
    assert sorted(queues["quantum"]["consumers"]) == sorted([first.hostname, second.hostname])
    assert queues["registry"]["consumers"] == [first.hostname]
    assert all(queue["depth"] == 0 for queue in queues.values()), queues

    drained = api_client.post(DRAIN_URL, {"hostname": first.hostname}, format="json", **headers)

    assert drained.status_code == 200, drained.content
    assert drained.json()["state"] == "draining"
    assert drained.json()["drained_queues"] == ["quantum", "registry"]
    [event] = AuditEvent.objects.filter(action="jobs.worker.drained", object_id=first.hostname)
    assert (event.actor_username, event.outcome) == (admin_user.username, "success")
    assert event.changes["queues"] == ["quantum", "registry"]
    # It keeps announcing itself, as draining and with no queue once Celery's cancel_consumer took them all (a
    # control message a busy broker may deliver after the reply's deadline: the worker still applies it).
    drained_row = _wait_for(
        lambda: (row := _workers_by_host(api_client, headers)[first.hostname])["queues"] == [] and row,
        "the drained worker to announce that it takes from no queue",
        timeout=30,
    )
    assert drained_row["state"] == "draining"
    queues = {queue["name"]: queue for queue in api_client.get(WORKERS_URL, **headers).json()["queues"]}
    assert queues["quantum"]["consumers"] == [second.hostname]
    assert queues["registry"]["consumers"] == []

    jobs = [job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(3), shots=16)) for _ in range(4)]

    for job in jobs:
        job_wait(job, FINISHED_STATUSES, timeout=120)
        assert job.status == JobStatus.COMPLETED, job.error
        assert second.holds(job), f"{job} ran on {job.worker!r}, not on the worker left taking jobs"
    assert first.process.poll() is None, "draining stops taking jobs, not the worker"
    rate = {queue["name"]: queue for queue in api_client.get(WORKERS_URL, **headers).json()["queues"]}["quantum"]
    assert rate["finished"] == 4
    assert rate["per_minute"] == round(4 / 15, 2)


def test_a_running_job_shows_under_its_worker_and_is_cancelled_from_the_page(
    two_workers, client, api_client, admin_user, operator_user
):
    headers = _token_headers(admin_user)
    _wait_for(lambda: WorkerPresence.objects.count() == 2, "both workers to announce themselves")
    job = job_submit(owner=operator_user, spec=JobSpec(source=slow_qasm2(22, 40), shots=10, method="statevector"))
    job_wait(job, [JobStatus.RUNNING], timeout=90)
    holder = next(worker for worker in two_workers if worker.holds(job))
    running = _wait_for(
        lambda: _workers_by_host(api_client, headers)[holder.hostname]["running_jobs"], "the running job to show"
    )
    assert [(entry["kind"], entry["id"], entry["status"]) for entry in running] == [("quantum", job.pk, "running")]
    sudo_force_login(client, admin_user)
    page = client.get(reverse("workers_page:index"))
    assert page.status_code == 200
    assert holder.hostname in page.content.decode()
    assert reverse("workers_page:job-cancel", args=["quantum", job.pk]) in page.content.decode()

    response = client.post(reverse("workers_page:job-cancel", args=["quantum", job.pk]))

    assert response.status_code == 302
    job_wait(job, [JobStatus.CANCELLED], timeout=90)  # the machine may be busy: stopping can take a while
    # The cancel asked by the administrator, then its end when the worker stopped it.
    events = AuditEvent.objects.filter(action="quantum.job.cancelled", object_id=str(job.pk)).order_by("id")
    asked = events.first()
    assert asked.actor_username == admin_user.username
    assert asked.changes == {"status": ["running", "cancelling"]}
    assert events.last().changes["status"] == "cancelled"
    again = client.post(reverse("workers_page:job-cancel", args=["quantum", job.pk]), follow=True)
    assert "already cancelled" in again.content.decode()


@pytest.mark.parametrize("fixture", ["viewer_user", "operator_user", "compliance_user", "outsider_user"])
def test_people_who_are_not_staff_are_refused_at_every_door(request, api_client, fixture, transactional_db):
    user = request.getfixturevalue(fixture)
    worker_announced("celery@somewhere")
    headers = _token_headers(user)
    for method, url in (
        ("get", WORKERS_URL),
        ("get", WORKERS_URL + "queues/"),
        ("post", DRAIN_URL),
        ("post", WORKERS_URL + "jobs/quantum/1/cancel/"),
    ):
        response = getattr(api_client, method)(url, {"hostname": "celery@somewhere"}, **headers)
        api_error(response, 403, "permission_denied")
    client = Client()
    otp_force_login(client, user)
    assert client.get(reverse("workers_page:index")).status_code == 403
    assert client.post(reverse("workers_page:drain"), {"hostname": "celery@somewhere"}).status_code == 403
    assert WorkerPresence.objects.get().draining_since is None


def test_staff_without_the_administrator_role_read_but_may_not_act(api_client, transactional_db):
    staff_viewer = UserFactory(username="sam-staff-viewer", is_staff=True, roles=[Role.VIEWER])
    worker_announced("celery@somewhere")
    headers = _token_headers(staff_viewer)
    assert api_client.get(WORKERS_URL, **headers).status_code == 200
    response = api_client.post(DRAIN_URL, {"hostname": "celery@somewhere"}, format="json", **headers)
    api_error(response, 403, "permission_denied")
    client = Client()
    sudo_force_login(client, staff_viewer)
    assert client.post(reverse("workers_page:drain"), {"hostname": "celery@somewhere"}).status_code == 403
    assert WorkerPresence.objects.get().draining_since is None
    assert not AuditEvent.objects.filter(action="jobs.worker.drained").exists()


def test_page_actions_need_the_sudo_window_and_sessions_in_the_api_too(admin_user, api_client, transactional_db):
    presence = worker_announced("celery@somewhere")
    client = Client()
    otp_force_login(client, admin_user)

    response = client.post(reverse("workers_page:drain"), {"hostname": presence.hostname})

    assert response.status_code == 302
    assert response.url.startswith(reverse("sudo"))
    otp_force_login(api_client, admin_user)
    body = api_error(
        api_client.post(DRAIN_URL, {"hostname": presence.hostname}, format="json"), 403, "reauthentication_required"
    )
    assert reverse("sudo") in body["detail"]
    presence.refresh_from_db()
    assert presence.draining_since is None


def test_bad_input_is_a_clear_4xx(api_client, admin_user, transactional_db):
    headers = _token_headers(admin_user)
    worker_announced("celery@gone")
    WorkerPresence.objects.filter(hostname="celery@gone").update(seen_at="2020-01-01T00:00:00Z")

    unknown = api_client.post(DRAIN_URL, {"hostname": "celery@gone"}, format="json", **headers)
    too_long = api_client.post(DRAIN_URL, {"hostname": "x" * 201}, format="json", **headers)
    window = api_client.get(WORKERS_URL + "?minutes=100000", **headers)
    kind = api_client.post(WORKERS_URL + "jobs/nosuchkind/1/cancel/", **headers)
    job = api_client.post(WORKERS_URL + "jobs/quantum/999999/cancel/", **headers)

    assert "No live worker is named 'celery@gone'" in api_error(unknown, 404, "not_found")["detail"]
    assert "200" in api_error(too_long, 400, "invalid")["detail"]
    assert "1440" in api_error(window, 400, "invalid")["detail"]
    assert "the kinds are" in api_error(kind, 404, "not_found")["detail"]
    api_error(job, 404, "not_found")


def test_cancelling_a_finished_job_is_a_conflict(api_client, admin_user, operator_user, transactional_db):
    headers = _token_headers(admin_user)
    worker_announced()
    job = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(3), shots=16))
    first = api_client.post(WORKERS_URL + f"jobs/quantum/{job.pk}/cancel/", **headers)
    assert first.status_code == 200, first.content
    assert first.json() == {"kind": "quantum", "id": job.pk, "status": "cancelled"}
    again = api_client.post(WORKERS_URL + f"jobs/quantum/{job.pk}/cancel/", **headers)
    assert "already cancelled" in api_error(again, 409, "conflict")["detail"]


def test_queue_depth_is_read_from_each_broker(each_broker, transactional_db):
    """Messages nobody takes yet are counted per queue, on Redis (priority lists summed) and on RabbitMQ."""
    with celery_app.connection_for_write() as connection:
        for queue in ("maintenance", "registry"):
            connection.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False)
            connection.default_channel.queue_purge(queue)
    try:
        for _ in range(3):
            celery_app.send_task("maintenance.workers-view-test", queue="maintenance")
        celery_app.send_task("registry.workers-view-test", queue="registry", priority=5)

        depths = _wait_for(
            lambda: (
                (found := queue_depths(["maintenance", "registry", "default"]))
                and found["maintenance"][0] == 3
                and found
            ),
            "the messages to be counted",
            timeout=10,
        )

        assert depths == {"maintenance": (3, ""), "registry": (1, ""), "default": (0, "")}
    finally:
        with celery_app.connection_for_write() as connection:
            for queue in ("maintenance", "registry"):
                connection.default_channel.queue_purge(queue)


def test_a_drain_lasts_while_the_same_run_announces_itself_and_ends_with_a_restart(transactional_db):
    started = timezone.now() - timedelta(minutes=5)
    worker_announce(hostname="celery@restarted", queues=["quantum"], started_at=started, concurrency=2, pid=10)
    WorkerPresence.objects.filter(hostname="celery@restarted").update(
        draining_since=timezone.now(), drained_queues=["quantum"], queues=[]
    )

    same_run = worker_announce(hostname="celery@restarted", queues=[], started_at=started, concurrency=2, pid=10)
    restarted = worker_announce(
        hostname="celery@restarted", queues=["quantum"], started_at=timezone.now(), concurrency=2, pid=11
    )

    assert same_run.is_draining
    assert same_run.drained_queues == ["quantum"]
    assert not restarted.is_draining
    assert (restarted.queues, restarted.drained_queues, restarted.pid) == (["quantum"], [], 11)
    assert restarted.versions["python"]
