"""Several chains appended at once: where an append goes, what a transaction's events look like, and that
checkpoints, verification and archives follow every chain.

A second, real connection plays another portal process: while this test's transaction holds chain 0, its
appends must take another chain.
"""

import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone

from apps.audit.hashing import GENESIS_HASH, HASHED_FIELDS, chain_genesis, row_hash
from apps.audit.models import AuditEvent
from apps.audit.services import archive_create, checkpoint_create, event_record, events_record
from apps.audit.verification import archive_verify, chain_verify
from tests.helpers import child_database_url

pytestmark = pytest.mark.django_db(transaction=True)

APPEND = "SELECT event_id, event_chain FROM audit_append(NULL, '', '', '', %s, '', '', '', '{}', '', 'success')"


def _append_elsewhere(*actions: str) -> list[tuple[int, int]]:
    """Append ``actions`` in one committed transaction of another connection; (id, chain) of each."""
    with psycopg.connect(child_database_url()) as other:
        appended = [other.execute(APPEND, [action]).fetchone() for action in actions]
        other.commit()
    return appended


def _raw(sql: str, params=()) -> None:
    """Change the trail with its guards off, as an attacker holding a database superuser could."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = 'replica'")
        cursor.execute(sql, params)


def _two_chains() -> tuple[list[AuditEvent], list[tuple[int, int]]]:
    """Events on chain 0 (this connection) and, while it holds chain 0, three on another chain."""
    with transaction.atomic():
        ours = [event_record(action="test.ours", changes={"n": n}) for n in range(2)]
        theirs = _append_elsewhere("test.theirs.1", "test.theirs.2", "test.theirs.3")
    ours.append(event_record(action="test.ours", changes={"n": 2}))
    return ours, theirs


def test_an_append_while_chain_0_is_held_takes_another_chain_and_both_verify():
    ours, theirs = _two_chains()
    assert {event.chain for event in ours} == {0}
    assert ours[0].prev_hash == GENESIS_HASH
    other_chain = theirs[0][1]
    assert other_chain != 0
    first_theirs = AuditEvent.objects.get(id=theirs[0][0])
    assert first_theirs.prev_hash == chain_genesis(other_chain) != GENESIS_HASH

    report = chain_verify()
    assert report.ok, report.summary()
    assert (report.verified, report.chains) == (6, 2)
    assert report.summary().startswith("Verified 6 events in 2 chains and 0 checkpoints")


def test_a_transactions_events_are_consecutive_in_one_chain():
    _, theirs = _two_chains()
    assert len({chain for _, chain in theirs}) == 1
    events = list(AuditEvent.objects.filter(id__in=[event_id for event_id, _ in theirs]).order_by("id"))
    assert [later.prev_hash for later in events[1:]] == [earlier.hash for earlier in events[:-1]]


def test_changed_and_missing_events_in_another_chain_are_named_with_that_chains_neighbours():
    _, theirs = _two_chains()
    (first, _), (middle, _), (last, _) = theirs
    _raw("UPDATE audit_auditevent SET object_repr = 'edited' WHERE id = %s", [last])
    changed = chain_verify()
    assert (changed.bad_event_id, changed.problem) == (last, f"content changed: event #{last} does not match its hash")

    _raw("UPDATE audit_auditevent SET object_repr = '' WHERE id = %s", [last])
    _raw("DELETE FROM audit_auditevent WHERE id = %s", [middle])
    missing = chain_verify()
    # The event before #last in its own chain was #first, whatever chain 0 appended in between.
    assert missing.bad_event_id == last
    assert missing.problem == f"event missing: the event before #{last} after event #{first} is gone"


def test_a_checkpoint_signs_every_chain_and_a_chains_removed_newest_event_is_detected():
    ours, theirs = _two_chains()
    checkpoint = checkpoint_create()
    other_chain, newest_theirs = theirs[0][1], theirs[-1][0]
    assert checkpoint.heads == {
        "0": [ours[-1].id, ours[-1].hash],
        str(other_chain): [newest_theirs, AuditEvent.objects.get(id=newest_theirs).hash],
    }
    assert checkpoint.event_count == 6
    assert chain_verify().ok

    # Chain 0's head is untouched; only the other chain loses its newest event.
    _raw("DELETE FROM audit_auditevent WHERE id = %s", [newest_theirs])
    report = chain_verify()
    assert report.bad_event_id == newest_theirs
    assert report.problem.startswith(f"events missing at the end: checkpoint {checkpoint.id}")


def test_a_forged_checkpoint_head_is_detected_by_its_signature():
    _two_chains()
    checkpoint = checkpoint_create()
    forged = {**checkpoint.heads, "0": [checkpoint.heads["0"][0], "f" * 64]}
    _raw("UPDATE audit_auditcheckpoint SET heads = %s WHERE id = %s", [psycopg.types.json.Jsonb(forged), checkpoint.id])
    report = chain_verify()
    assert (report.broken, report.problem) == ("checkpoint", f"checkpoint {checkpoint.id} has an invalid signature")


def test_archiving_anchors_every_chain_and_both_continue_from_their_anchor(tmp_path, settings):
    settings.AUDIT_RETENTION_DAYS = 0
    ours, theirs = _two_chains()
    other_chain, theirs_newest_hash = theirs[0][1], AuditEvent.objects.get(id=theirs[-1][0]).hash
    output = tmp_path / "audit.jsonl.gz"
    archive = archive_create(before=timezone.now(), output=output)
    assert archive.anchors == {"0": ours[-1].hash, str(other_chain): theirs_newest_hash}
    archived = archive_verify(output)
    assert (archived.ok, archived.verified) == (True, 6)

    # Both chains go on from where the archive cut them.
    with transaction.atomic():
        event_record(action="test.after")
        ((after_theirs, _),) = _append_elsewhere("test.after.theirs")
    report = chain_verify()
    assert report.ok, report.summary()
    continued = AuditEvent.objects.get(id=after_theirs)
    assert continued.prev_hash == archive.anchors.get(str(continued.chain), chain_genesis(continued.chain))


def test_events_recorded_together_are_hashed_as_python_does_consecutive_and_gone_with_a_rollback(operator_user):
    entries = [
        {"action": "test.batch", "actor": operator_user, "changes": {"n": n, "ünïcode": "✓"}, "object_repr": "x" * 300}
        for n in range(5)
    ]
    with transaction.atomic():
        first = event_record(action="test.before")
        batch = events_record(entries)
    assert [event.id for event in batch] == sorted(event.id for event in batch)
    assert {event.chain for event in batch} == {first.chain}
    assert [event.prev_hash for event in batch] == [first.hash] + [event.hash for event in batch[:-1]]
    stored = AuditEvent.objects.filter(action="test.batch").order_by("id")
    for event, (content, stored_hash) in zip(batch, [(row[:-1], row[-1]) for row in stored.values_list(
            *HASHED_FIELDS, "hash")], strict=True):  # fmt: skip
        assert row_hash(content) == stored_hash == event.hash
    assert stored.first().actor_username == operator_user.username
    assert chain_verify().ok

    with transaction.atomic():
        events_record(entries)
        transaction.set_rollback(True)
    assert AuditEvent.objects.filter(action="test.batch").count() == 5
    assert events_record([]) == []
