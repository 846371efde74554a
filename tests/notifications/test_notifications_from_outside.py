"""As deployed: `runportal` (web only) and a separate `celery worker` process on PostgreSQL and Redis, driven over
HTTP as scripts and browsers do; the mail server, the webhook receiver and the SIEM are real servers of the test's."""

import re
from functools import partial

import pytest
import requests

from apps.accounts.tokens import token_create
from apps.audit.models import AuditEvent
from apps.notifications.webhooks import webhook_endpoint_create
from project.celery import app as celery_app
from tests.audit.collectors import SyslogListener
from tests.helpers import PortalProcess, WorkerProcess, child_database_url, wait_for
from tests.mail_server import text_body
from tests.quantum_circuits import ghz_qasm2

from .webhook_receiver import readme_verification_snippet

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
NEW_PASSWORD = "a brand-new passphrase 4 the reset"

# This file's deadline for what it waits for.
_wait_for = partial(wait_for, timeout=90)


def _form_post(session: requests.Session, url: str, data: dict) -> requests.Response:
    """Open the page, then post its form as a browser does (CSRF token and cookie, same-origin Referer)."""
    page = session.get(url, timeout=15)
    assert page.status_code == 200, page.text[:300]
    csrf = CSRF_FIELD.search(page.text).group(1)
    return session.post(page.url, data={"csrfmiddlewaretoken": csrf, **data}, headers={"Referer": page.url}, timeout=15)


@pytest.fixture
def siem():
    listener = SyslogListener().start()
    yield listener
    listener.stop()


def test_notifications_reset_and_forwarding_work_between_real_processes(
    transactional_db, operator_user, admin_user, smtp_server, webhook_receiver, siem, tmp_path, settings
):
    outside = {
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_server.port),
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "WEBHOOK_ALLOW_HTTP": "true",
        "AUDIT_FORWARD_URLS": f"syslog+tcp://127.0.0.1:{siem.port}",
        # One secret key on every host, as deployed: the web host checks the reset links a worker signs.
        "SECRET_KEY": settings.SECRET_KEY,
    }
    portal = PortalProcess(tmp_path / "web", DATABASE_URL=child_database_url(), REDIS_URL=settings.REDIS_URL, **outside)
    portal.environment["PORTAL_URL"] = portal.url
    worker = WorkerProcess("outside", tmp_path, PORTAL_URL=portal.url, **outside)
    _, secret = webhook_endpoint_create(
        name="Pager", url=webhook_receiver.url, events=["job.completed"], owner=admin_user
    )
    token = token_create(owner=operator_user, name="script", scopes=["read", "write"], expires_in_days=1).secret
    portal.start()
    try:
        # A script asks to be told about its jobs, then submits one; the worker process runs it and tells.
        script = requests.Session()
        script.headers["Authorization"] = f"Bearer {token}"
        chosen = script.put(
            f"{portal.url}/api/v1/notifications/preferences/",
            json={"preferences": [{"event": "job.completed", "email": True}]},
            timeout=15,
        )
        assert chosen.status_code == 200, chosen.text
        submitted = script.post(
            f"{portal.url}/api/v1/quantum/jobs/", json={"name": "ghz three", "source": ghz_qasm2(3)}, timeout=15
        )
        assert submitted.status_code == 201, submitted.text
        job_id = submitted.json()["id"]
        (told,) = smtp_server.wait_for(1, to=operator_user.email, timeout=120)
        assert told["Subject"] == f"[Opsdeck] Job completed: Job #{job_id} ghz three completed"
        assert f"{portal.url}/dashboard/jobs/{job_id}/" in text_body(told)
        (hook,) = webhook_receiver.wait_for(1)
        assert hook.headers["Opsdeck-Event"] == "job.completed"
        signature_valid = readme_verification_snippet()["opsdeck_signature_valid"]
        assert signature_valid(secret, hook.body, hook.headers["Opsdeck-Signature"])

        # A person who forgot their password resets it from the sign-in page and the email's link.
        browser = requests.Session()
        asked = _form_post(browser, f"{portal.url}/accounts/password-reset/", {"email": operator_user.email})
        assert asked.url == f"{portal.url}/accounts/password-reset/sent/"
        reset_email = smtp_server.wait_for(2, to=operator_user.email)[1]
        link = re.search(rf"{re.escape(portal.url)}/accounts/password-reset/\S+/", text_body(reset_email)).group(0)
        fields = {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
        assert _form_post(browser, link, fields).url == f"{portal.url}/accounts/password-reset/done/"
        assert "does not work" in browser.get(link, timeout=15).text, "a used link must not work twice"
        signed_in = _form_post(
            requests.Session(),
            f"{portal.url}/accounts/login/",
            {"username": operator_user.username, "password": NEW_PASSWORD},
        )
        assert signed_in.url == f"{portal.url}/dashboard/"

        # The SIEM receives the whole trail, announcements and reset included, once and in order.
        celery_app.send_task("maintenance.audit_forward", queue="maintenance")
        chain = list(AuditEvent.objects.order_by("id").values_list("id", "hash"))
        _wait_for(lambda: len(siem.documents) >= len(chain), "forwarding the trail to the SIEM")
        forwarded = siem.documents
        assert [(document["id"], document["hash"]) for document in forwarded[: len(chain)]] == chain
        actions = {document["action"] for document in forwarded}
        assert {"notification.job.completed", "auth.password_reset.completed"} <= actions
    finally:
        portal.kill()
        worker.stop()
