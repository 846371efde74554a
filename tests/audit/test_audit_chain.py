"""The audit chain: append-only on PostgreSQL, tampering detected and named, checkpoints, archives."""

import gzip
import itertools
import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.utils import timezone

from apps.audit.hashing import GENESIS_HASH
from apps.audit.models import AuditCheckpoint, AuditEvent
from apps.audit.services import AuditError, archive_create, checkpoint_create, event_record
from apps.audit.verification import archive_verify, chain_verify
from tests.helpers import PROJECT_DIR, clean_environment, manage

pytestmark = pytest.mark.django_db


def _record(count: int) -> list[AuditEvent]:
    return [event_record(action="test.event", changes={"n": n}, object_repr=f"thing {n}") for n in range(count)]


def _raw(sql: str, params=()):
    """Run SQL with the append-only trigger off, as an attacker with database access could."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = 'replica'")
        cursor.execute(sql, params)
        cursor.execute("SET LOCAL session_replication_role = 'origin'")


def test_events_form_one_chain_that_verifies():
    events = _record(5)
    assert events[0].prev_hash == GENESIS_HASH
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(events))
    report = chain_verify()
    assert report.ok
    assert (report.verified, report.head_id, report.head_hash) == (5, events[-1].id, events[-1].hash)


def test_verify_command_prints_count_and_head(capsys):
    events = _record(3)
    call_command("audit", "verify")
    assert f"Verified 3 events and 0 checkpoints; head #{events[-1].id} {events[-1].hash}" in capsys.readouterr().out


@pytest.mark.parametrize("statement", ["UPDATE audit_auditevent SET action = 'forged'", "DELETE FROM audit_auditevent"])
def test_raw_sql_cannot_update_or_delete_events(statement):
    _record(2)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert AuditEvent.objects.count() == 2


def test_orm_cannot_update_or_delete_events():
    event = _record(1)[0]
    event.action = "forged"
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.save()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditCheckpoint.objects.create(head_id=1, head_hash="x", event_count=1, signature="y").delete()


def test_deleting_a_user_keeps_their_events_and_the_chain(operator_user):
    event = event_record(action="test.by_user", actor=operator_user)
    operator_user.delete()
    event.refresh_from_db()
    assert event.actor_id is None
    assert event.actor_username == "oscar-operator"
    assert chain_verify().ok


def test_changed_content_is_detected_at_that_event():
    events = _record(5)
    _raw("UPDATE audit_auditevent SET object_repr = 'nothing to see' WHERE id = %s", [events[2].id])
    report = chain_verify()
    assert report.bad_event_id == events[2].id
    assert report.problem.startswith("content changed")


def test_edited_changes_are_detected():
    events = _record(3)
    _raw("""UPDATE audit_auditevent SET changes_text = '{"n":99}' WHERE id = %s""", [events[1].id])
    report = chain_verify()
    assert report.bad_event_id == events[1].id
    assert report.problem.startswith("content changed")


def test_deleted_event_in_the_middle_is_detected_at_its_successor():
    events = _record(5)
    _raw("DELETE FROM audit_auditevent WHERE id = %s", [events[2].id])
    report = chain_verify()
    assert report.bad_event_id == events[3].id
    assert report.problem == f"event missing: the event before #{events[3].id} after event #{events[1].id} is gone"


def test_swapped_events_are_detected_as_reordered():
    events = _record(5)
    first, second = events[1].id, events[3].id
    columns = [f.column for f in AuditEvent._meta.concrete_fields if f.column != "id"]
    assignments = ", ".join(f"{c} = other.{c}" for c in columns)
    _raw("CREATE TEMP TABLE swapped AS SELECT * FROM audit_auditevent WHERE id IN (%s, %s)", [first, second])
    _raw("UPDATE audit_auditevent SET hash = 'swap-' || id WHERE id IN (%s, %s)", [first, second])
    _raw(
        f"UPDATE audit_auditevent AS target SET {assignments} FROM swapped AS other "  # noqa: S608
        "WHERE (target.id, other.id) IN ((%s, %s), (%s, %s))",
        [first, second, second, first],
    )
    report = chain_verify()
    assert report.bad_event_id == first
    assert report.problem.startswith("order changed")


def test_removed_newest_events_are_detected_by_the_checkpoint():
    events = _record(5)
    checkpoint_create()
    _raw("DELETE FROM audit_auditevent WHERE id >= %s", [events[3].id])
    report = chain_verify()
    assert report.bad_event_id == events[4].id
    assert report.problem.startswith("events missing at the end")
    with pytest.raises(CommandError, match=f"Audit chain broken at event #{events[4].id}: events missing at the end"):
        call_command("audit", "verify")


def test_rewritten_chain_is_detected_by_the_checkpoint_signature(settings):
    _record(3)
    checkpoint_create()
    settings.AUDIT_SIGNING_KEY = "a-different-key-than-the-one-that-signed"
    report = chain_verify()
    assert not report.ok
    assert "invalid signature" in report.problem


def test_verify_from_an_id_checks_only_the_rest():
    events = _record(5)
    _raw("UPDATE audit_auditevent SET object_repr = 'edited' WHERE id = %s", [events[0].id])
    assert not chain_verify().ok
    report = chain_verify(from_id=events[1].id)
    assert report.ok
    assert report.verified == 4


def test_verify_up_to_an_id_checks_only_that_range_and_its_checkpoints():
    events = _record(5)
    checkpoint_create()  # signs the head, events[4]: outside the range below
    _raw("UPDATE audit_auditevent SET object_repr = 'edited' WHERE id = %s", [events[4].id])
    assert not chain_verify().ok
    report = chain_verify(from_id=events[1].id, to_id=events[3].id)
    assert (report.ok, report.verified, report.head_id, report.head_hash) == (True, 3, events[3].id, events[3].hash)
    assert report.checkpoints == 0
    _raw("UPDATE audit_auditevent SET object_repr = 'edited' WHERE id = %s", [events[2].id])
    broken = chain_verify(from_id=events[1].id, to_id=events[3].id)
    assert (broken.ok, broken.bad_event_id) == (False, events[2].id)


def test_verify_warns_when_no_recent_checkpoint(capsys):
    _record(1)
    call_command("audit", "verify")
    assert "no checkpoint ever" in capsys.readouterr().err


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_in_several_processes_keep_one_linear_chain():
    script = (
        "import django; django.setup()\n"
        "from apps.audit.services import event_record\n"
        "for n in range(40): event_record(action='test.concurrent', changes={'n': n})\n"
    )
    environment = {
        **__import__("os").environ,
        "TEST_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
    }
    writers = [
        subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT_DIR, env=environment, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    for writer in writers:
        _, errors = writer.communicate(timeout=120)
        assert writer.returncode == 0, errors.decode()
    report = chain_verify()
    assert report.ok, report.problem
    assert report.verified == AuditEvent.objects.filter(action="test.concurrent").count() == 160
    assert AuditEvent.objects.values("prev_hash").distinct().count() == 160


def _age_all_events(days: int) -> None:
    _raw("UPDATE audit_auditevent SET timestamp = timestamp - %s", [timedelta(days=days)])


def test_archive_moves_old_events_out_and_the_rest_still_verifies(tmp_path, settings):
    settings.AUDIT_RETENTION_DAYS = 30
    old = _record(4)
    # Events written 40 days ago: age them and re-hash the chain to match.
    _age_all_events(40)
    _rechain()
    newer = _record(2)
    output = tmp_path / "audit-2026.jsonl.gz"
    call_command("audit", "archive", "--before", (timezone.now() - timedelta(days=30)).date().isoformat(),
                 "--output", str(output))  # fmt: skip
    assert list(AuditEvent.objects.order_by("id").values_list("id", flat=True))[:2] == [e.id for e in newer]
    report = chain_verify()
    assert report.ok, report.problem
    assert AuditEvent.objects.filter(action="audit.archived").exists()
    archived = archive_verify(output)
    assert archived.ok
    assert (archived.verified, archived.head_id) == (4, old[-1].id)
    lines = _archive_lines(output)
    assert json.loads(lines[0])["previous_anchor_hash"] == GENESIS_HASH
    assert len(lines) == 5


def test_archive_refuses_dates_inside_retention(tmp_path, settings):
    settings.AUDIT_RETENTION_DAYS = 30
    _record(1)
    with pytest.raises(AuditError, match="AUDIT_RETENTION_DAYS"):
        archive_create(before=timezone.now(), output=tmp_path / "x.jsonl.gz")
    assert not (tmp_path / "x.jsonl.gz").exists()


def test_tampered_archive_file_is_detected(tmp_path, settings):
    settings.AUDIT_RETENTION_DAYS = 0
    _record(3)
    output = tmp_path / "a.jsonl.gz"
    archive_create(before=timezone.now(), output=output)
    lines = _archive_lines(output)
    record = json.loads(lines[2])
    record["object_repr"] = "edited"
    lines[2] = json.dumps(record)
    with gzip.open(output, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    with pytest.raises(CommandError, match=f"event #{record['id']}: content changed"):
        call_command("audit", "verify", "--archive", str(output))


def _rechain() -> None:
    """Recompute the hashes of the (aged) test events so the chain is valid again."""
    from apps.audit.hashing import HASHED_FIELDS, row_hash

    previous = GENESIS_HASH
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = 'replica'")
        for event_id, *content in AuditEvent.objects.order_by("id").values_list("id", *HASHED_FIELDS):
            content[-1] = previous
            previous = row_hash(content)
            cursor.execute(
                "UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE id = %s", [content[-1], previous, event_id]
            )
        cursor.execute("SET LOCAL session_replication_role = 'origin'")


def _archive_lines(path) -> list[str]:
    with gzip.open(path, "rt") as handle:
        return handle.read().splitlines()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("tamper", ["none", "missing_at_boundary", "content_in_second_range"])
def test_large_chains_verified_in_parallel_ranges_find_the_same_first_problem(monkeypatch, tamper):
    from apps.audit import verification

    monkeypatch.setattr(verification, "VERIFY_PARALLEL_MIN_EVENTS", 10)
    events = _record(30)  # two ranges: the first 15 ids and the last 15
    boundary = events[15]
    with transaction.atomic():
        if tamper == "missing_at_boundary":
            _raw("DELETE FROM audit_auditevent WHERE id = %s", [boundary.id])
        elif tamper == "content_in_second_range":
            _raw("UPDATE audit_auditevent SET object_repr = 'edited' WHERE id = %s", [events[20].id])
    report = chain_verify()
    if tamper == "none":
        assert (report.ok, report.verified, report.head_id) == (True, 30, events[-1].id)
    elif tamper == "missing_at_boundary":
        assert report.bad_event_id == events[16].id
        missing = f"event missing: the event before #{events[16].id} after event #{events[14].id} is gone"
        assert report.problem == missing
    else:
        assert report.bad_event_id == events[20].id
        assert report.problem.startswith("content changed")


def test_every_timestamp_text_has_the_length_postgres_verification_assumes():
    from apps.audit.hashing import TIMESTAMP_TEXT_LENGTH, canonical_timestamp

    earliest = datetime(1, 1, 1, tzinfo=UTC)
    latest = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert {len(canonical_timestamp(moment)) for moment in (earliest, latest)} == {TIMESTAMP_TEXT_LENGTH}


def test_events_appended_by_postgres_hash_exactly_as_python_does(operator_user):
    from apps.audit.hashing import HASHED_FIELDS, row_hash

    request_like = {"changes": {"ünïcode": "✓", "nested": {"b": [1, 2.5, None]}}, "object_repr": "x" * 300}
    event_record(action="test.hash", actor=operator_user, **request_like)
    event_record(action="test.hash", changes={}, object_type="a.b", object_id="7")
    for event_id, *content, stored in AuditEvent.objects.values_list("id", *HASHED_FIELDS, "hash"):
        assert row_hash(content) == stored, event_id


def test_embedded_sqlite_chain_is_verified_in_python_and_a_changed_event_is_named(tmp_path):
    database = tmp_path / "portal.sqlite3"
    environment = clean_environment(OPSDECK_DATA_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{database}")
    assert manage("migrate", "--noinput", environment=environment).returncode == 0
    record = "from apps.audit.services import event_record\nfor n in range(4): event_record(action=f'test.{n}')"
    assert manage("shell", "-c", record, environment=environment).returncode == 0

    intact = manage("audit", "verify", environment=environment)
    with sqlite3.connect(database) as db:
        changed = db.execute("SELECT max(id) - 1 FROM audit_auditevent").fetchone()[0]
        db.execute("UPDATE audit_auditevent SET object_repr = 'edited' WHERE id = ?", [changed])
    broken = manage("audit", "verify", environment=environment)

    assert intact.returncode == 0, intact.stderr
    assert intact.stdout.startswith("Verified 4 events")
    assert broken.returncode == 1
    assert f"Audit chain broken at event #{changed}: content changed" in broken.stderr
