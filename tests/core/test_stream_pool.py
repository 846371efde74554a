"""Streamed exports against the running ASGI server and the real PostgreSQL pool: hostile, failing and abandoned
streams all give their connection back, and readiness answers within seconds even with the pool exhausted."""

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from django.db import connections
from psycopg_pool import PoolTimeout

from apps.accounts.tokens import token_create
from apps.audit import export
from apps.audit.services import event_record
from tests.mfa import totp_device_create

# A leak shows as requests starved of a connection; a deadlock must not hold the run for pytest's default 300 s.
pytestmark = pytest.mark.timeout(120)

EXPORT_PATH = "/api/v1/audit/events/export/"
EVENTS_PATH = "/api/v1/audit/events/"
HOSTILE_SINCE = "0400-08-30T15:09:13+16:09"
# Only against hanging forever: a request starved of a connection fails by itself after DATABASE_POOL_TIMEOUT.
REQUEST_TIMEOUT = 30


@pytest.fixture
def pool(transactional_db):
    return connections["default"].pool


@pytest.fixture
def reader_token(compliance_user):
    """A compliance officer's read token, as a script exporting evidence would hold."""
    totp_device_create(compliance_user)
    return token_create(owner=compliance_user, name="export", scopes=["read"], expires_in_days=30).secret


def _get(base: str, path: str, token: str | None = None, **query: str) -> tuple[int, bytes]:
    url = f"{base}{path}?{urllib.parse.urlencode(query)}" if query else f"{base}{path}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=REQUEST_TIMEOUT) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _assert_portal_answers_and_is_ready(base: str, token: str, pool) -> None:
    # More requests than the pool has connections: each needs one, so a single leaked connection per earlier
    # request would leave these waiting for the pool and failing.
    for _ in range(pool.max_size + 2):
        status, _body = _get(base, EVENTS_PATH, token)
        assert status == 200
    status, body = _get(base, "/health/ready")
    report = json.loads(body)
    assert status == 200, report
    assert report["checks"]["database"]["ok"] is True


def _events(count: int, action: str = "test.export") -> None:
    for index in range(count):
        event_record(action=action, changes={"n": index})


def test_fifty_hostile_exports_are_400s_and_the_portal_stays_ready(asgi_live_server, reader_token, pool):
    _events(3)
    for _ in range(50):
        status, body = _get(asgi_live_server, EXPORT_PATH, reader_token, format="jsonl", since=HOSTILE_SINCE)
        assert status == 400
        assert json.loads(body)["errors"]["since"] == [
            "The UTC offset +16:09 is out of range: offsets run from -14:00 to +14:00."
        ]
    _assert_portal_answers_and_is_ready(asgi_live_server, reader_token, pool)


def test_export_failing_mid_stream_is_cut_off_and_gives_its_connection_back(
    asgi_live_server, reader_token, pool, monkeypatch
):
    _events(2)
    _events(1, action="test.poison")
    serialise = export._jsonl_block

    def poisoned(rows):
        if any("test.poison" in row for row in rows):
            raise ValueError("this row does not serialise")
        return serialise(rows)

    monkeypatch.setattr(export, "ROWS_PER_CHUNK", 1)
    monkeypatch.setattr(export, "_jsonl_block", poisoned)
    for _ in range(pool.max_size + 2):
        with pytest.raises(http.client.IncompleteRead) as cut:
            _get(asgi_live_server, EXPORT_PATH, reader_token, format="jsonl")
        # The rows before the failure arrived; the client can tell the file is incomplete.
        assert cut.value.partial.count(b'"action": "test.export"') == 2
    _assert_portal_answers_and_is_ready(asgi_live_server, reader_token, pool)


def test_client_leaving_an_export_half_way_gives_its_connection_back(asgi_live_server, reader_token, pool, monkeypatch):
    _events(40)
    serialise = export._jsonl_block

    def slow(rows):
        time.sleep(0.1)
        return serialise(rows)

    monkeypatch.setattr(export, "ROWS_PER_CHUNK", 1)
    monkeypatch.setattr(export, "_jsonl_block", slow)
    host = urllib.parse.urlsplit(asgi_live_server)
    for _ in range(pool.max_size + 2):
        client = http.client.HTTPConnection(host.hostname, host.port, timeout=REQUEST_TIMEOUT)
        client.request("GET", f"{EXPORT_PATH}?format=jsonl", headers={"Authorization": f"Bearer {reader_token}"})
        reply = client.getresponse()
        assert reply.status == 200
        assert reply.readline().startswith(b"{")
        client.close()  # four seconds of export still to come
    _assert_portal_answers_and_is_ready(asgi_live_server, reader_token, pool)


def test_readiness_with_the_pool_exhausted_is_a_quick_503_naming_it(asgi_live_server, pool, settings):
    settings.HEALTH_CHECK_TIMEOUT_SECONDS = 1
    held = []
    try:
        while True:
            try:
                held.append(pool.getconn(timeout=0.5))
            except PoolTimeout:
                break
        started = time.monotonic()
        status, body = _get(asgi_live_server, "/health/ready")
        elapsed = time.monotonic() - started
    finally:
        for borrowed in held:
            pool.putconn(borrowed)
    report = json.loads(body)
    assert status == 503, report
    assert report["status"] == "down"
    assert report["checks"]["database"]["detail"] == (
        f"connection pool exhausted: all {pool.max_size} connections in use (DATABASE_POOL_MAX_SIZE), "
        "none free within 1s"
    )
    assert report["checks"]["migrations"] == {
        "ok": False,
        "required": True,
        "detail": "not run: database is down",
        "latency_ms": 0.0,
    }
    # Well under DATABASE_POOL_TIMEOUT (10 s), which a check waiting on Django's connection would take.
    assert elapsed < 8
    assert _get(asgi_live_server, "/health/ready")[0] == 200
