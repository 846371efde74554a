"""Audit sinks in the admin: credentials never shown or audited, cursor resets recorded, "Send now" queued."""

import time

import pytest
from django.utils import timezone

from apps.audit.forwarding import audit_forward, sink_save
from apps.audit.models import AuditEvent, AuditSink
from apps.audit.services import event_record
from tests.audit.collectors import SyslogListener
from tests.shell_pages import LAPTOP, PHONE, PageProblems, Visitor, page_check, session_of

pytestmark = pytest.mark.django_db

CHANGELIST_URL = "/admin/audit/auditsink/"
SECRET = "t0ken-s3cret"


@pytest.fixture
def admin_client(client, admin_user, otp_login):
    otp_login(client, admin_user)
    return client


@pytest.fixture
def sink():
    return sink_save(sink=AuditSink(name="central", url=f"https://bearer:{SECRET}@siem.example/in?ca_file=/ca.pem"))


def _form(sink: AuditSink, **changes) -> dict:
    data = {"name": sink.name, "url": "", "tls_ca_file": sink.tls_ca_file, "cursor": sink.cursor}
    if sink.active:
        data["active"] = "on"
    return {**data, **changes}


def test_list_shows_lag_and_masked_target_never_the_credentials(admin_client, sink):
    for n in range(3):
        event_record(action="test.waiting", object_repr=str(n))
    response = admin_client.get(CHANGELIST_URL)
    page = response.content.decode()
    assert response.status_code == 200
    assert "https://bearer:********@siem.example/in?ca_file=/ca.pem" in page
    assert SECRET not in page
    # Every event is waiting (the sink's creation and the three among them): its cursor is at 0.
    assert response.context["cl"].model_admin.lag_events(sink) == str(AuditEvent.objects.count())

    change_page = admin_client.get(f"{CHANGELIST_URL}{sink.pk}/change/").content.decode()
    assert SECRET not in change_page


def test_creating_a_sink_checks_the_url_and_audits_it_masked(admin_client):
    response = admin_client.post(f"{CHANGELIST_URL}add/", {"name": "x", "url": "ftp://siem", "cursor": 0})
    assert response.status_code == 200
    assert "unsupported scheme &#x27;ftp&#x27;" in response.content.decode()

    response = admin_client.post(
        f"{CHANGELIST_URL}add/",
        {"name": "siem", "url": f"https://user:{SECRET}@siem.example/in", "cursor": 0, "active": "on"},
    )
    assert response.status_code == 302
    created = AuditEvent.objects.get(action="audit.sink.created")
    assert created.changes["after"]["url"] == "https://user:********@siem.example/in"
    assert SECRET not in created.changes_text
    assert AuditSink.objects.get().url == f"https://user:{SECRET}@siem.example/in"
    assert not AuditEvent.objects.filter(action__startswith="admin.object").exists()


def test_saving_with_an_empty_url_keeps_it_and_a_cursor_reset_is_recorded(admin_client, sink):
    url = sink.url
    response = admin_client.post(f"{CHANGELIST_URL}{sink.pk}/change/", _form(sink, cursor=0, name="renamed"))
    assert response.status_code == 302
    sink.refresh_from_db()
    assert (sink.name, sink.url) == ("renamed", url)

    newest = AuditEvent.objects.order_by("-id").first().id
    admin_client.post(f"{CHANGELIST_URL}{sink.pk}/change/", _form(sink, cursor=newest))
    change = AuditEvent.objects.filter(action="audit.sink.changed").order_by("-id").first()
    assert change.changes == {"cursor": {"before": 0, "after": newest}}

    response = admin_client.post(f"{CHANGELIST_URL}{sink.pk}/change/", _form(sink, cursor=newest + 1000))
    assert "The cursor must be an event id from 0 (send everything) to" in response.content.decode()


def test_a_stale_form_does_not_move_the_cursor_back(admin_client, sink):
    stale = _form(sink, tls_ca_file="")
    AuditSink.objects.filter(pk=sink.pk).update(cursor=1)  # the forwarder moved on while the form was open
    stale["cursor"] = 0  # unchanged in the form: it was 0 when opened
    stale["initial-cursor"] = 0
    admin_client.post(f"{CHANGELIST_URL}{sink.pk}/change/", {**stale, "active": ""})
    sink.refresh_from_db()
    assert (sink.active, sink.cursor) == (False, 1)


def test_sinks_from_the_setting_are_read_only_here(admin_client, settings):
    listener = SyslogListener().start()
    try:
        settings.AUDIT_FORWARD_URLS = [f"syslog+tcp://127.0.0.1:{listener.port}#managed"]
        audit_forward()
    finally:
        listener.stop()
    managed = AuditSink.objects.get(name="managed")
    response = admin_client.post(f"{CHANGELIST_URL}{managed.pk}/change/", _form(managed, name="edited"))
    assert response.status_code == 403
    assert AuditSink.objects.get(pk=managed.pk).name == "managed"


@pytest.mark.parametrize(
    ("username", "listed", "may_change"),
    [("operator_user", 403, False), ("compliance_user", 200, False), ("admin_user", 200, True)],
)
def test_audit_readers_see_sinks_and_only_administrators_change_them(client, request, otp_login, sink, username,
                                                                     listed, may_change):  # fmt: skip
    user = request.getfixturevalue(username)
    user.is_staff = True
    user.save()
    otp_login(client, user)
    assert client.get(CHANGELIST_URL).status_code == listed
    response = client.post(f"{CHANGELIST_URL}{sink.pk}/change/", _form(sink, name="renamed"))
    assert response.status_code == (302 if may_change else 403)
    assert AuditSink.objects.get(pk=sink.pk).name == ("renamed" if may_change else "central")


@pytest.mark.django_db(transaction=True)
def test_send_now_forwards_through_the_worker(admin_client, celery_worker):
    listener = SyslogListener().start()
    try:
        sink = sink_save(sink=AuditSink(name="now", url=f"syslog+tcp://127.0.0.1:{listener.port}"))
        response = admin_client.post(CHANGELIST_URL, {"action": "send_now", "_selected_action": [sink.pk]})
        assert response.status_code == 302
        deadline = time.monotonic() + 30
        while AuditSink.objects.get(pk=sink.pk).cursor == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [document["id"] for document in listener.documents] == list(
            AuditEvent.objects.order_by("id").values_list("id", flat=True)
        )
    finally:
        listener.stop()


@pytest.fixture
def sinks_shown(transactional_db, roles, admin_user) -> str:
    """A failing HTTPS sink and a healthy syslog one; the session of an administrator (made before the browser)."""
    failing = sink_save(sink=AuditSink(name="central-siem", url=f"https://bearer:{SECRET}@siem.example.com/ingest"))
    AuditSink.objects.filter(pk=failing.pk).update(
        consecutive_failures=3,
        last_failure_at=timezone.now(),
        last_error="siem.example.com did not answer: HTTPSConnectionPool(host='siem.example.com', port=443): Max "
        "retries exceeded with url: /ingest (Caused by NameResolutionError)",
    )
    sink_save(sink=AuditSink(name="rsyslog", url="syslog+tls://logs.example.com:6514"))
    return session_of(admin_user, second_factor=True)


@pytest.mark.browser
@pytest.mark.pages
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_sink_list_and_page_fit_the_screen_without_errors_or_axe_violations(
    asgi_live_server, sinks_shown, viewport, chromium
):
    context = Visitor("admin", sinks_shown).context(chromium, asgi_live_server, viewport)
    page = context.new_page()
    problems = PageProblems(page)
    page.goto(asgi_live_server + CHANGELIST_URL)
    page_check(page, problems, f"admin-audit-sinks-{viewport['width']}")
    assert page.locator("#result_list tbody tr").count() == 2
    assert SECRET not in page.content()
    page.locator("#result_list tbody tr a[href*='/change/']").first.click()
    page.wait_for_url("**/change/")
    page_check(page, problems, f"admin-audit-sink-{viewport['width']}")
    assert SECRET not in page.content()
    context.close()
