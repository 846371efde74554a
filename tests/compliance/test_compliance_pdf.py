"""PDF reports read as an auditor expects: column titles in words and never broken mid-word, times and kind names in
words, "1 row" / "2 rows", "Page N of M", and the signing key and how to verify the file on the cover.

Every kind is generated as the worker generates it, on seeded data with long usernames and enough rows for several
pages; the text is read back with poppler's ``pdftotext -layout``, as a reader's copy-and-paste sees it."""

import re
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Group
from django.utils import timezone

from apps.accounts.models import User
from apps.audit.services import event_record
from apps.backups.choices import BackupStatus, BackupTrigger
from apps.backups.models import Backup
from apps.compliance import services
from apps.compliance.choices import ReportFormat, ReportKind
from apps.compliance.pdf_layout import column_widths
from apps.compliance.pdf_text import counted, human_time, shown, title
from apps.compliance.reports import REPORT_BUILDERS, ReportParams
from apps.compliance.signing import key_fingerprint
from apps.core.choices import Role
from apps.jobs.choices import JobStatus
from apps.quantum.models import QuantumJob
from tests.compliance.test_compliance_api import run_report

JOINED = datetime(2026, 11, 2, 8, 15, tzinfo=UTC)
LAST_LOGIN = datetime(2026, 11, 20, 17, 5, 9, tzinfo=UTC)
SUBJECT = "maximiliane-longname-00-compliance"
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
# Words this long may be wider than any column can be (hashes, JSON without spaces): they may be broken.
BREAKABLE_CHARS = 40


# --- The words


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("username", "Username"),
        ("superuser", "Superuser"),
        ("locked_out", "Locked out"),
        ("mfa_devices", "MFA devices"),
        ("api_tokens", "API tokens"),
        ("last_used_ip", "Last used IP"),
        ("object_id", "Object ID"),
        ("size_bytes", "Size (bytes)"),
        ("as_of", "As of"),
        ("OTP failures", "OTP failures"),
        ("accounts with findings", "Accounts with findings"),
    ],
)
def test_machine_names_read_as_titles(name, expected):
    assert title(name) == expected


def test_times_read_in_words_in_utc_with_seconds_only_when_there_are_some():
    assert human_time(datetime(2026, 12, 6, 22, 50, tzinfo=UTC)) == "6 Dec 2026, 22:50 UTC"
    assert shown("2026-12-06T22:50:00+00:00") == "6 Dec 2026, 22:50 UTC"
    assert shown("2026-12-07T00:20:05.5+01:30") == "6 Dec 2026, 22:50:05 UTC"
    assert shown("2026-13-06T22:50:00+00:00") == "2026-13-06T22:50:00+00:00"  # not a time: as it is
    assert shown("2026-12-06") == "2026-12-06"  # no time of day, no zone: as it is


def test_json_gets_spaces_to_wrap_at_and_counts_their_plural():
    assert shown('{"role":"operator","ids":[1,2]}') == '{"ids": [1, 2], "role": "operator"}'
    assert shown("{not json") == "{not json"
    assert shown(True) == "true"
    assert [counted(number, "row") for number in (0, 1, 2, 1200)] == ["0 rows", "1 row", "2 rows", "1,200 rows"]


# --- Column widths (points)


def test_columns_that_fit_on_one_line_get_their_width_and_some_air_not_the_whole_page():
    assert column_widths([20, 20], [30, 40], [50, 100], 600) == pytest.approx([70, 140])


def test_columns_share_what_is_left_after_their_longest_words():
    widths = column_widths([20, 20], [100, 100], [300, 500], 400)

    assert sum(widths) == pytest.approx(400)
    assert widths[0] > 100
    assert widths[1] > widths[0]


def test_only_the_columns_with_the_widest_words_give_way_when_the_words_do_not_fit():
    # A username (110), an action (70), two hashes (230 each): the hashes break, nothing else does.
    widths = column_widths([30, 30, 30, 30], [110, 70, 230, 230], [110, 70, 230, 230], 400)

    assert sum(widths) == pytest.approx(400)
    assert widths[:2] == [110, 70]
    assert widths[2] == pytest.approx(widths[3]) == pytest.approx(110)


# --- Every kind, generated


@pytest.fixture
def report_storage(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def evidence(db, compliance_user, admin_user, report_storage):
    """Accounts with long names (enough for several pages), failed logins, one lockout, role changes, backups and
    quantum jobs; the period ends after them."""
    start = timezone.now() - timedelta(days=40)
    operators = Group.objects.get_or_create(name=Role.OPERATOR)[0]
    users = User.objects.bulk_create(
        User(
            username=f"maximiliane-longname-{number:02d}-{role}",
            first_name="Maximiliane",
            last_name=f"Longname-Example {number}",
            email=f"maximiliane.longname.{number:02d}@example.test",
            is_superuser=number % 9 == 0,
            is_staff=number % 9 == 0,
            date_joined=JOINED,
            last_login=LAST_LOGIN if number % 2 else None,
        )
        for number, role in ((number, "compliance" if number == 0 else "operator") for number in range(70))
    )
    operators.user_set.add(*users)
    for number, user in enumerate(users[:45]):
        event_record(action="auth.login.failed", object_repr=user.username, ip=f"10.0.{number // 10}.{number}")
        event_record(action="accounts.role.added", actor=admin_user, obj=user, changes={"role": Role.OPERATOR})
    event_record(
        action="auth.lockout", object_repr=users[1].username, ip="10.0.0.1",
        changes={"locked_until": "2026-11-21T18:00:00+00:00"},
    )  # fmt: skip
    AccessAttempt.objects.create(
        username=users[1].username, ip_address="10.0.0.1", user_agent="x", get_data="", post_data="",
        http_accept="", path_info="/", failures_since_start=5,
    )  # fmt: skip
    for day in range(0, 35, 3):
        backup = Backup.objects.create(
            status=BackupStatus.VERIFIED if day % 2 else BackupStatus.COMPLETED, compression="zstd",
            key_id="0123456789abcdef", storage_name="backups", database_engine="postgresql",
            trigger=BackupTrigger.SCHEDULE, size_bytes=123_456_789,
        )  # fmt: skip
        Backup.objects.filter(pk=backup.pk).update(
            started_at=start + timedelta(days=day, hours=2),
            finished_at=start + timedelta(days=day, hours=2, minutes=3),
            verified_at=start + timedelta(days=day, hours=5) if day % 2 else None,
            verification={"ok": True, "message": "restored and compared"} if day % 2 else {},
        )
    for user in users[:3]:
        QuantumJob.objects.create(
            owner=user, source="OPENQASM 2.0;", qasm_version=2, num_qubits=2, num_clbits=2, depth=2, shots=1024,
            status=JobStatus.COMPLETED,
        )  # fmt: skip
    return start, timezone.now()


def generated_pdf(kind: str, period: tuple[datetime, datetime], actor, filters=None) -> tuple[list[str], str]:
    """A report of ``kind`` generated as the worker does it: its pages' text and its file name."""
    report = services.report_request(
        kind=kind, fmt=ReportFormat.PDF, period_start=period[0], period_end=period[1], filters=filters, actor=actor
    )
    run_report(report.pk)
    report.refresh_from_db()
    assert report.status == JobStatus.COMPLETED, report.error
    text = subprocess.run(
        ["pdftotext", "-layout", report.file.path, "-"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return text.split("\f")[:-1], report.file.path


def known_words(kind: str, period: tuple[datetime, datetime], filters=None) -> tuple[set[str], set[str]]:
    """The words of the column titles and of every value of the report, as the PDF shows them."""
    titles, values = set(), set()
    params = ReportParams(kind=kind, period_start=period[0], period_end=period[1], filters=filters or {})
    for section in REPORT_BUILDERS[kind](params):
        rows = list(section.rows)
        if rows:  # an empty section shows no table, so no titles
            titles.update(word for column in section.columns for word in title(column).split())
        values.update(word for row in rows for value in row for word in shown(value).split())
        for name, value in section.summary.items():
            values.update([*title(name).split(), *shown(value).split()])
    return titles, values


def broken_words(pages: list[str], words: set[str]) -> set[str]:
    """Known words found in two pieces in the text, as "userna/me": a word broken across lines. (Not when both
    pieces are known words themselves, as "with" and "out" of "without"; only words with a letter: "20" and "24"
    standing for "2024" would be days and page numbers.)"""
    tokens = {token for page in pages for token in page.split()}
    return {
        f"{word[:cut]}/{word[cut:]}"
        for word in words
        if 4 <= len(word) < BREAKABLE_CHARS and re.search("[A-Za-z]", word)
        for cut in range(1, len(word))
        if {word[:cut], word[cut:]} <= tokens and not {word[:cut], word[cut:]} <= words
    }


FILTERS = {ReportKind.SUBJECT_EXPORT: {"username": SUBJECT}}


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ReportKind.values)
def test_each_kind_reads_as_an_auditor_expects(evidence, compliance_user, kind):
    pages, _ = generated_pdf(kind, evidence, compliance_user, FILTERS.get(kind))
    titles, values = known_words(kind, evidence, FILTERS.get(kind))
    cover, text = pages[0], "\n".join(pages)

    assert broken_words(pages, titles | values) == set()
    assert titles <= set(text.split())
    assert not re.search(r"\b1 rows\b", text)
    assert not [value for value in ReportKind.values if "_" in value and value in text], "a kind's machine name"
    assert ReportKind(kind).label in cover
    assert not ISO_TIME.search(cover)
    for number, page in enumerate(pages, 1):
        assert f"Page {number} of {len(pages)}" in page
    fingerprint = key_fingerprint()
    assert f"Signing key {fingerprint[:16]}…" in re.sub(r"\s+", " ", cover)
    assert fingerprint in cover
    assert "How to verify this file" in cover
    assert "report verify" in cover


@pytest.mark.django_db
def test_access_review_titles_times_and_counts_are_in_words(evidence, compliance_user):
    pages, _ = generated_pdf(ReportKind.ACCESS_REVIEW, evidence, compliance_user)
    text = "\n".join(pages)

    assert len(pages) >= 4  # a cover and several pages of accounts
    # Titles in words (a title may wrap between its words, so they are looked for one by one).
    assert {"Username", "Superuser", "MFA", "devices", "Last", "login", "Locked", "out"} <= set(text.split())
    for machine in ("username", "superuser", "locked_out", "mfa_devices", "last_login"):
        assert not re.search(rf"\b{machine}\b", text)
    # "2 Nov 2026, 08:15 UTC" and "20 Nov 2026, 17:05:09 UTC": the table is as wide as the page, so a date may wrap
    # between any of its words (how depends on the other columns' contents).
    for shown_part in ("Nov", "2026,", "08:15", "17:05:09", "UTC"):
        assert shown_part in text
    assert not ISO_TIME.search(text)
    for page in pages[1:]:  # the header is repeated on every page of the table
        assert "Username" in page
    assert "continued" not in pages[1]
    for page in pages[2:]:  # and the pages after the first say which table goes on
        assert page.lstrip().startswith("Accounts (continued)")
    assert {user.username for user in User.objects.all()} <= set(text.split())


@pytest.mark.django_db
def test_one_row_is_a_row_and_key_facts_are_a_table(evidence, compliance_user):
    pages, _ = generated_pdf(ReportKind.AUTHENTICATION, evidence, compliance_user)
    cover, text = pages[0], "\n".join(pages)

    assert "Lockouts (1 row)" in text
    assert "Failures per user (45 rows)" in text
    assert "1 row with findings is highlighted" in text
    # Each key fact on a line of its own: its name, then its value in the next column.
    assert re.search(r"^\s*Failed logins\s+45$", cover, flags=re.MULTILINE)
    assert re.search(r"^\s*OTP failures\s+0$", cover, flags=re.MULTILINE)
    assert "; " not in cover.split("Key facts", 1)[1].split("How to verify", 1)[0]
