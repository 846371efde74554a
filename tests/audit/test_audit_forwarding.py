"""Forwarding the audit trail to collectors: every event once, in chain order, with its hash, across outages."""

import itertools
import socket
import threading
import uuid

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.utils import timezone

from apps.audit.forwarding import FORWARD_LOCK_CLASS, ForwardError, audit_forward, sink_forward, sink_save
from apps.audit.hashing import event_hash
from apps.audit.models import AuditEvent, AuditSink
from apps.audit.services import AuditError, archive_create, event_record
from apps.audit.sinks import SD_ID
from apps.audit.tasks import audit_forward as audit_forward_task
from project.settings.env import Environment
from project.settings.forwarding import forward_urls
from tests.audit.collectors import HttpCollector, SyslogListener, certificates, port_closed
from tests.core.test_metrics import _sample


def _record(count: int, action: str = "test.forwarded") -> list[AuditEvent]:
    return [event_record(action=action, object_repr=f'thing "{n}" [x]', changes={"n": n}) for n in range(count)]


def _sink(url: str, **fields) -> AuditSink:
    return sink_save(sink=AuditSink(name=f"siem-{uuid.uuid4().hex[:8]}", url=url, **fields))


def _chain() -> list[tuple[int, str]]:
    return list(AuditEvent.objects.order_by("id").values_list("id", "hash"))


def _assert_every_event_once_in_order(documents: list[dict]) -> None:
    assert [(document["id"], document["hash"]) for document in documents] == _chain()
    for earlier, later in itertools.pairwise(documents):
        assert later["prev_hash"] == earlier["hash"]
    for document in documents:  # what the collector received is what the hash covers
        assert event_hash(document) == document["hash"]


def _ready(client) -> tuple[str, dict]:
    response = client.get("/health/ready")
    assert response.status_code == 200
    report = response.json()
    return report["status"], report["checks"]["audit_forwarding"]


@pytest.fixture
def small_batches(settings):
    settings.AUDIT_FORWARD_BATCH_SIZE = 3


@pytest.mark.django_db
def test_syslog_sink_receives_every_event_once_in_chain_order_with_its_hash(listener, small_batches):
    _record(7)
    sink = _sink(f"syslog+tcp://127.0.0.1:{listener.port}")

    summary = audit_forward()

    assert summary == f"{sink.name}: {AuditEvent.objects.count()} events sent"
    _assert_every_event_once_in_order(listener.documents)
    assert listener.connections == 3  # 8 events (7 and the sink's creation) in batches of 3
    message = listener.messages[1]
    assert message.sd_id == SD_ID
    assert (message.pri, message.msgid) == (13 * 8 + 6, "audit")  # log audit, informational
    assert message.params["hash"] == message.document["hash"]
    assert message.params["prev_hash"] == listener.messages[0].document["hash"]
    assert message.params["object"] == 'thing "1" [x]'  # escaped in the structured data, read back whole
    sink.refresh_from_db()
    assert (sink.cursor, sink.consecutive_failures, sink.forwarded_total) == (_chain()[-1][0], 0, 8)
    assert sink.last_success_at is not None

    # Caught up: nothing again; new events only.
    assert audit_forward() == f"{sink.name}: 0 events sent"
    _record(2)
    audit_forward()
    _assert_every_event_once_in_order(listener.documents)


@pytest.mark.django_db
def test_outage_loses_nothing_and_sends_nothing_twice(listener, small_batches, client):
    _record(4)
    sink = _sink(f"syslog+tcp://127.0.0.1:{listener.port}")
    audit_forward()
    cursor = AuditSink.objects.get().cursor

    listener.stop()
    assert port_closed(listener.port)
    _record(5, action="test.during_outage")
    with pytest.raises(ForwardError, match=rf"{sink.name}: cannot connect to syslog\+tcp://127.0.0.1:{listener.port}"):
        audit_forward()
    with pytest.raises(ForwardError):
        audit_forward()

    sink.refresh_from_db()
    assert (sink.cursor, sink.consecutive_failures) == (cursor, 2)
    assert "cannot connect" in sink.last_error
    status, check = _ready(client)
    assert (status, check["ok"], check["required"]) == ("degraded", False, False)
    assert check["detail"].startswith(f"{sink.name}: 2 failed attempts, 5 events waiting; cannot connect")
    metrics = client.get("/metrics").content.decode()
    assert _sample(metrics, "audit_forward_failures_total", sink=sink.name) == 2
    assert _sample(metrics, "audit_forward_lag_events", sink=sink.name) == 5
    assert _sample(metrics, "audit_forward_lag_seconds", sink=sink.name) > 0

    listener.start()  # the same port again
    audit_forward()

    _assert_every_event_once_in_order(listener.documents)
    sink.refresh_from_db()
    assert (sink.cursor, sink.consecutive_failures, sink.last_error) == (_chain()[-1][0], 0, "")
    status, check = _ready(client)
    assert check == {**check, "ok": True, "detail": "1 sink up to date"}
    assert _sample(client.get("/metrics").content.decode(), "audit_forward_lag_events", sink=sink.name) == 0


@pytest.mark.django_db
def test_collector_that_resets_the_connection_gets_the_batch_again(small_batches):
    # Reads the start of the batch, then resets the connection: the batch was not read, so not accepted.
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def rude():
        connection, _ = server.accept()
        connection.recv(10)  # the start of the batch only
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        connection.close()

    threading.Thread(target=rude, daemon=True).start()
    _record(2)
    sink = _sink(f"syslog+tcp://127.0.0.1:{port}")
    with pytest.raises(ForwardError, match="did not accept the batch"):
        audit_forward()
    server.close()
    sink.refresh_from_db()
    assert sink.cursor == 0


@pytest.mark.django_db
def test_tls_sink_trusts_the_configured_ca_only(tmp_path):
    tls = certificates(tmp_path)
    listener = SyslogListener(tls=tls.server_context).start()
    try:
        _record(3)
        untrusted = _sink(f"syslog+tls://127.0.0.1:{listener.port}")
        with pytest.raises(ForwardError, match=r"certificate .* not trusted"):
            audit_forward()
        assert listener.documents == []
        untrusted.active = False
        sink_save(sink=untrusted, fields=["active"])

        _sink(f"syslog+tls://127.0.0.1:{listener.port}", tls_ca_file=str(tls.ca_file))
        audit_forward()

        _assert_every_event_once_in_order(listener.documents)
    finally:
        listener.stop()


@pytest.mark.django_db
def test_https_json_lines_sink_retries_a_batch_the_collector_refused(tmp_path, small_batches):
    tls = certificates(tmp_path)
    collector = HttpCollector(tls=tls.server_context)
    try:
        _record(4)
        sink = _sink(f"https://bearer:t0ken-s3cret@127.0.0.1:{collector.port}/ingest?ca_file={tls.ca_file}")
        collector.status = 500
        with pytest.raises(ForwardError, match="answered HTTP 500"):
            audit_forward()
        sink.refresh_from_db()
        assert (sink.cursor, sink.consecutive_failures) == (0, 1)
        assert "t0ken-s3cret" not in sink.last_error

        collector.status = 200
        audit_forward()

        _assert_every_event_once_in_order(collector.lines)
        assert {headers["Authorization"] for headers in collector.headers} == {"Bearer t0ken-s3cret"}
        assert {headers["Content-Type"] for headers in collector.headers} == {"application/x-ndjson"}
    finally:
        collector.stop()


@pytest.mark.django_db
def test_plain_http_sink_is_used_only_when_allowed(settings):
    collector = HttpCollector()
    try:
        _record(1)
        settings.AUDIT_FORWARD_ALLOW_HTTP = True
        sink = _sink(f"http://user:pa55word@127.0.0.1:{collector.port}/")
        audit_forward()
        _assert_every_event_once_in_order(collector.lines)
        assert collector.headers[0]["Authorization"].startswith("Basic ")

        settings.AUDIT_FORWARD_ALLOW_HTTP = False
        _record(1)
        with pytest.raises(ForwardError, match="plain http:// would send audit events unencrypted"):
            audit_forward()
        sink.refresh_from_db()
        assert "pa55word" not in sink.last_error
    finally:
        collector.stop()


@pytest.mark.django_db
def test_second_forwarder_for_a_sink_sends_nothing_while_the_first_runs(listener):
    _record(2)
    sink = _sink(f"syslog+tcp://127.0.0.1:{listener.port}")
    database = connection.settings_dict
    # Another process forwarding to this sink holds its lock.
    with psycopg.connect(host=database["HOST"], port=database["PORT"], user=database["USER"],
                         dbname=database["NAME"], autocommit=True) as other:  # fmt: skip
        other.execute("SELECT pg_advisory_lock(%s, %s)", [FORWARD_LOCK_CLASS, sink.pk])
        assert sink_forward(sink.pk) == (0, "")
        assert listener.documents == []
        other.execute("SELECT pg_advisory_unlock(%s, %s)", [FORWARD_LOCK_CLASS, sink.pk])
        assert sink_forward(sink.pk) == (3, "")


@pytest.mark.django_db
def test_archive_refuses_events_an_active_sink_has_not_received(listener, tmp_path, settings):
    settings.AUDIT_RETENTION_DAYS = 0
    _record(3)
    sink = _sink(f"syslog+tcp://127.0.0.1:{listener.port}")
    with pytest.raises(AuditError, match=f"Audit sink '{sink.name}' has accepted events only up to #0"):
        archive_create(before=timezone.now(), output=tmp_path / "a.jsonl.gz")
    assert not (tmp_path / "a.jsonl.gz").exists()

    audit_forward()
    archive = archive_create(before=timezone.now(), output=tmp_path / "b.jsonl.gz")
    assert archive.last_id == AuditSink.objects.get().cursor


@pytest.mark.django_db
def test_forward_urls_setting_creates_updates_and_retires_sinks(listener, settings):
    url = f"syslog+tcp://127.0.0.1:{listener.port}#central-siem"
    settings.AUDIT_FORWARD_URLS = [url]
    audit_forward()
    sink = AuditSink.objects.get()
    assert (sink.name, sink.url, sink.managed, sink.active) == ("central-siem", url, True, True)
    events = AuditEvent.objects.count()

    audit_forward()  # idempotent: no change, no event
    assert AuditEvent.objects.count() == events

    settings.AUDIT_FORWARD_URLS = []
    audit_forward()
    sink.refresh_from_db()
    assert not sink.active
    assert AuditEvent.objects.filter(action="audit.sink.changed").count() == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ftp://siem:21", "unsupported scheme 'ftp'"),
        ("syslog+tcp://siem:99999", "the port must be a number from 1 to 65535"),
        ("syslog+tcp://siem:port", "the port must be a number from 1 to 65535"),
        ("syslog+tcp://", "no host"),
        ("https://bearer:hunter2@siem/x", None),
        ("https://user:hunter2@siem:0/x", "the port must be a number"),
        ("http://siem/x", "plain http:// would send audit events unencrypted"),
        ("syslog+tcp://siem:514?ca_file=/ca.pem", "ca_file needs TLS"),
        ("syslog+tls://siem?ca=/ca.pem", "unknown parameter 'ca'"),
        ("syslog+tcp://a:514#x, syslog+tcp://b:514#x", "two sinks are named 'x'"),
    ],
)
def test_forward_urls_setting_names_the_variable_and_hides_credentials(value, message):
    environment = Environment({"AUDIT_FORWARD_URLS": value})
    if message is None:
        assert forward_urls(environment, "AUDIT_FORWARD_URLS", allow_http=False) == [value]
        return
    with pytest.raises(ImproperlyConfigured, match=f"^AUDIT_FORWARD_URLS: .*{message}") as raised:
        forward_urls(environment, "AUDIT_FORWARD_URLS", allow_http=False)
    assert "hunter2" not in str(raised.value)


def test_forward_urls_may_come_from_a_file(tmp_path):
    secret_file = tmp_path / "urls"
    secret_file.write_text("https://bearer:abc@siem/in, syslog+tls://siem2:6514\n")
    environment = Environment({"AUDIT_FORWARD_URLS_FILE": str(secret_file)})
    assert forward_urls(environment, "AUDIT_FORWARD_URLS", allow_http=False) == [
        "https://bearer:abc@siem/in",
        "syslog+tls://siem2:6514",
    ]


@pytest.mark.django_db(transaction=True)
def test_scheduled_task_forwards_through_a_real_worker(listener, celery_worker):
    _record(3)
    sink = _sink(f"syslog+tcp://127.0.0.1:{listener.port}")

    assert audit_forward_task.delay().get(timeout=30) == f"{sink.name}: 4 events sent"

    _assert_every_event_once_in_order(listener.documents)


@pytest.mark.django_db
def test_missing_ca_file_is_a_failure_of_that_sink_only(listener, tmp_path):
    _record(1)
    broken = _sink("https://collector.example/in", tls_ca_file=str(tmp_path / "gone.pem"))
    working = _sink(f"syslog+tcp://127.0.0.1:{listener.port}")
    with pytest.raises(ForwardError, match=f"{broken.name}: the TLS CA file .*gone.pem does not exist"):
        audit_forward()
    assert AuditSink.objects.get(pk=broken.pk).cursor == 0
    assert AuditSink.objects.get(pk=working.pk).cursor == _chain()[-1][0]
    _assert_every_event_once_in_order(listener.documents)
