"""Report renderers: CSV, zipped CSVs and JSON parse back to the rows given; the PDF reads as a report."""

import csv
import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pypdf import PdfReader

from apps.compliance.rendering import PDF_MAX_ROWS, RenderError, canonical, cell_text, plain, render
from apps.compliance.reports.base import Section

META = {
    "title": "Access review report",
    "kind": "access_review",
    "period_start": "2024-01-01T00:00:00+00:00",
    "period_end": "2024-02-01T00:00:00+00:00",
    "generated_at": "2024-02-01T03:00:00+00:00",
    "generated_by": "carl-compliance",
    "filters": {},
    "audit_head_hash": "ab" * 32,
}
ACCOUNT_COLUMNS = ["username", "email", "superuser", "last_login", "tokens", "findings"]
ACCOUNT_ROWS = [
    ["alice-admin", "alice@example.test", "yes", "2024-01-05T10:00:00+00:00", 2, "privileged without MFA"],
    ["bob", "bøb@example.test", "no", "", 0, ""],
    ['carol, "the" auditor', "carol@example.test", "no", "2023-09-01T00:00:00+00:00", 1, ""],
    ["dave", "dave@example.test", "no", "2024-01-30T00:00:00+00:00", 1, "token without expiry"],
]
BACKUP_COLUMNS = ["backup", "created", "verified", "size_bytes"]
BACKUP_ROWS = [[1, "2024-01-02T00:00:00+00:00", "yes", 1024], [2, "2024-01-09T00:00:00+00:00", "no", 2048]]


def streamed(rows):
    """Rows as a generator, as a cursor gives them: consumable once."""
    yield from (list(row) for row in rows)


def accounts_section(rows=ACCOUNT_ROWS):
    return Section(
        name="accounts",
        title="Accounts",
        columns=ACCOUNT_COLUMNS,
        rows=streamed(rows),
        findings_column="findings",
        summary={"accounts": len(rows), "superusers": 1},
    )


def backups_section():
    return Section(name="backups", title="Backups", columns=BACKUP_COLUMNS, rows=streamed(BACKUP_ROWS))


def rendered(sections, fmt):
    out = io.BytesIO()
    counts = render(sections, fmt, out, META)
    return counts, out.getvalue()


def as_text(rows):
    return [[cell_text(value) for value in row] for row in rows]


def test_one_section_csv_is_one_utf8_file_that_parses_back_to_the_rows():
    counts, data = rendered([accounts_section()], "csv")

    assert counts == {"accounts": 4}
    assert not data.startswith(b"PK")
    parsed = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert parsed[0] == ACCOUNT_COLUMNS
    assert parsed[1:] == as_text(ACCOUNT_ROWS)


def test_several_sections_csv_is_a_zip_of_one_csv_per_section_named_after_it():
    counts, data = rendered([accounts_section(), backups_section()], "csv")

    assert counts == {"accounts": 4, "backups": 2}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["accounts.csv", "backups.csv"]
        assert archive.testzip() is None
        accounts = list(csv.reader(io.StringIO(archive.read("accounts.csv").decode("utf-8"), newline="")))
        backups = list(csv.reader(io.StringIO(archive.read("backups.csv").decode("utf-8"), newline="")))
    assert accounts == [ACCOUNT_COLUMNS, *as_text(ACCOUNT_ROWS)]
    assert backups == [BACKUP_COLUMNS, *as_text(BACKUP_ROWS)]


def test_the_same_sections_zip_to_the_same_bytes():
    _, first = rendered([accounts_section(), backups_section()], "csv")
    _, second = rendered([accounts_section(), backups_section()], "csv")

    assert first == second


def test_json_parses_back_to_meta_sections_rows_and_summaries():
    counts, data = rendered([accounts_section(), backups_section()], "json")

    document = json.loads(data)
    assert counts == {"accounts": 4, "backups": 2}
    assert document["meta"] == META
    assert list(document["sections"]) == ["accounts", "backups"]
    accounts = document["sections"]["accounts"]
    assert accounts["columns"] == ACCOUNT_COLUMNS
    assert accounts["rows"] == ACCOUNT_ROWS
    assert accounts["summary"] == {"accounts": 4, "superusers": 1}
    assert accounts["findings_column"] == "findings"
    assert document["sections"]["backups"]["rows"] == BACKUP_ROWS


def test_json_rows_digest_is_the_sha256_of_each_rows_canonical_line():
    _, data = rendered([accounts_section(), backups_section()], "json")

    document = json.loads(data)
    digest = hashlib.sha256()
    for name, section in document["sections"].items():
        for row in section["rows"]:
            digest.update(
                (json.dumps([name, row], sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
            )
    assert document["rows_sha256"] == digest.hexdigest()


def test_json_summary_filled_while_rows_stream_is_written_complete():
    section = Section(name="events", title="Events", columns=["n"], rows=[], summary={})

    def counting():
        for number in range(3):
            section.summary["seen"] = number + 1
            yield [number]

    section.rows = counting()
    _, data = rendered([section], "json")

    assert json.loads(data)["sections"]["events"] == {
        "title": "Events",
        "columns": ["n"],
        "findings_column": None,
        "rows": [[0], [1], [2]],
        "summary": {"seen": 3},
    }


def test_values_that_are_not_json_types_are_written_as_iso_text_and_strings():
    moment = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)

    assert plain([moment, Decimal("1.50"), None, True, {"b": 1, "a": [1]}]) == [
        "2024-01-02T03:04:05+00:00",
        "1.50",
        None,
        True,
        {"b": 1, "a": [1]},
    ]
    assert cell_text(None) == ""
    assert cell_text(False) == "false"
    assert cell_text({"b": 1, "a": 2}) == '{"a":2,"b":1}'
    assert canonical({"b": "ø", "a": 1}) == '{"a":1,"b":"ø"}'


def test_a_row_with_the_wrong_number_of_values_is_refused_with_the_section_named():
    section = Section(name="accounts", title="Accounts", columns=["a", "b"], rows=[["only one"]])

    with pytest.raises(RenderError, match="'accounts' has 2 columns but a row with 1 values"):
        rendered([section], "json")


def test_an_unknown_format_is_refused_naming_the_formats():
    with pytest.raises(RenderError, match="Unknown report format 'xlsx': choose one of csv, json, pdf"):
        rendered([accounts_section()], "xlsx")


def pdf_text(data: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(data))
    return reader, "\n".join(page.extract_text() for page in reader.pages)


def test_pdf_holds_title_period_generated_by_counts_findings_and_rows():
    counts, data = rendered([accounts_section(), backups_section()], "pdf")

    reader, text = pdf_text(data)
    assert counts == {"accounts": 4, "backups": 2}
    assert data.startswith(b"%PDF-")
    assert reader.metadata.title == "Access review report"
    cover = reader.pages[0].extract_text()
    for expected in (
        "Access review report",
        "1 Jan 2024, 00:00 UTC to 1 Feb 2024, 00:00 UTC",
        "1 Feb 2024, 03:00 UTC by carl-compliance",
        "Kind\nAccess review\n",
    ):
        assert expected in cover
    assert "Accounts\n4\n2\n" in cover  # section, rows, findings
    assert "Backups\n2\n-\n" in cover
    assert "Key facts\n Accounts\nAccounts\n4\nSuperusers\n1\n" in cover  # a table of names and values
    assert "Accounts (4 rows)" in text
    assert "Backups (2 rows)" in text
    assert "2 rows with findings are highlighted" in text
    assert "privileged without MFA" in text
    assert "bøb@example.test" in text


def test_pdf_pages_are_numbered_and_footed_with_the_rows_digest_and_where_the_file_hash_is():
    _, json_data = rendered([accounts_section(), backups_section()], "json")
    _, data = rendered([accounts_section(), backups_section()], "pdf")

    reader, _ = pdf_text(data)
    digest = json.loads(json_data)["rows_sha256"]
    assert len(reader.pages) >= 2
    for number, page in enumerate(reader.pages, 1):
        text = page.extract_text()
        assert f"Page {number} of {len(reader.pages)}" in text
        assert f"Rows digest (SHA-256): {digest}" in text
        assert "SHA-256 of this file: in the manifest" in text


def test_pdf_highlights_rows_with_findings_only():
    rows = [["a", "", "", "", 0, ""], ["b", "", "", "", 0, "finding"]]
    _, with_finding = rendered([accounts_section(rows)], "pdf")
    _, without = rendered([accounts_section([[*row[:5], ""] for row in rows])], "pdf")

    # The highlight colour #fde2e1 as reportlab writes a fill: 0.992157 0.886275 0.882353 rg
    def fills(data):
        reader = PdfReader(io.BytesIO(data))
        return sum(page.get_contents().get_data().count(b".992157 .886275 .882353 rg") for page in reader.pages)

    assert fills(with_finding) >= 2  # the cover's summary row and the data row
    assert fills(without) == 0


def test_a_long_table_repeats_its_header_on_every_page():
    rows = [[f"user{number}", "u@example.test", "no", "", 0, ""] for number in range(300)]
    _, data = rendered([accounts_section(rows)], "pdf")

    reader = PdfReader(io.BytesIO(data))
    table_pages = reader.pages[1:]
    assert len(table_pages) >= 3
    for page in table_pages:
        assert "Username" in page.extract_text()
        assert "Last login" in page.extract_text()
    assert "user299" in reader.pages[-1].extract_text()


def test_a_pdf_of_more_rows_than_the_limit_is_refused_suggesting_csv(monkeypatch):
    monkeypatch.setattr("apps.compliance.rendering.PDF_MAX_ROWS", 3)
    out = io.BytesIO()

    with pytest.raises(RenderError, match=r"more than 3 rows, the most a PDF report holds .*choose CSV or JSON"):
        render([accounts_section()], "pdf", out, META)
    assert out.getvalue() == b""
    assert PDF_MAX_ROWS == 50_000
