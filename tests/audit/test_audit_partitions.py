"""The audit table partitioned by month (PostgreSQL): partitions, their guards, archiving by detaching, migration."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.audit.partitions import PartitionError, partitions_ensure, partitions_list
from apps.audit.services import archive_create, checkpoint_create, event_record
from apps.audit.verification import archive_verify, chain_verify
from tests.audit.test_audit_chain import _raw, _rechain
from tests.audit.test_audit_roles import _attack, careless_roles, roles  # noqa: F401 - fixtures

TABLE = "audit_auditevent"


def _record(count: int, action: str = "test.event") -> list[AuditEvent]:
    return [event_record(action=action, changes={"n": n}) for n in range(count)]


def _month(offset: int) -> date:
    """The first day of the UTC month ``offset`` months from this one."""
    today = timezone.now().astimezone(UTC).date()
    index = today.year * 12 + today.month - 1 + offset
    return date(index // 12, index % 12 + 1, 1)


def _partition_name(month: date) -> str:
    return f"{TABLE}_p{month:%Y%m}"


def _partition_of(event_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {TABLE} WHERE id = %s", [event_id])  # noqa: S608
        return cursor.fetchone()[0]


def _exists(relation: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [relation])
        return cursor.fetchone()[0]


def _create_partition(month: date) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT audit_partition_create(%s)", [month])


def _set_timestamp(event_id: int, moment: datetime) -> None:
    with transaction.atomic():
        _raw(f"UPDATE {TABLE} SET timestamp = %s WHERE id = %s", [moment, event_id])  # noqa: S608


def _move(events: list[AuditEvent], month: date) -> None:
    """Give ``events`` timestamps on the 15th of ``month``, in their order (the chain is re-hashed afterwards)."""
    start = datetime(month.year, month.month, 15, tzinfo=UTC)
    for n, event in enumerate(events):
        _set_timestamp(event.id, start + timedelta(seconds=n))


@pytest.mark.django_db
def test_table_is_partitioned_by_month_and_its_keys_include_the_timestamp():
    event = _record(1)[0]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_partkeydef(%s::regclass)", [TABLE])
        assert cursor.fetchone()[0] == 'RANGE ("timestamp")'
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('p', 'u') ORDER BY conname",
            [TABLE],
        )
        keys = cursor.fetchall()
    assert keys == [
        ("audit_auditevent_pkey", 'PRIMARY KEY (id, "timestamp")'),
        ("audit_hash_unique", 'UNIQUE (hash, "timestamp")'),
    ]
    assert _partition_of(event.id) == _partition_name(event.timestamp.astimezone(UTC).date())
    with connection.cursor() as cursor:  # named after the parent's index, so that plans say which one they use
        cursor.execute("SELECT %s::regclass IS NOT NULL", [f"{_partition_of(event.id)}_audit_object_id_recent"])
        assert cursor.fetchone()[0]
    months = [p.month for p in partitions_list() if p.month]
    assert months[-3:] == [_month(0), _month(1), _month(2)]
    assert partitions_list()[-1].name == f"{TABLE}_default"


PARTITION_ATTACKS = {
    "delete": "DELETE FROM {partition}",
    "delete_with_archive_flag": "SET LOCAL opsdeck.audit_archive = 'on'; DELETE FROM {partition}",
    "truncate": "TRUNCATE {partition}",
    "truncate_default": f"TRUNCATE {TABLE}_default",
    "update": "UPDATE {partition} SET action = 'forged'",
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attack", PARTITION_ATTACKS)
@pytest.mark.parametrize(
    ("role_fixture", "refusal"),
    [
        ("roles", "permission denied"),  # the application role, with the rights grant_database_roles gives it
        ("careless_roles", "audit trail is append-only"),  # a role granted ALL: the partition's own triggers
    ],
)
def test_a_statement_aimed_at_one_partition_is_refused(request, attack, role_fixture, refusal):
    app_role = request.getfixturevalue(role_fixture)[0]
    events = _record(2)
    statement = PARTITION_ATTACKS[attack].format(partition=_partition_of(events[0].id))

    error = _attack(app_role, statement)

    assert refusal in str(error)
    assert AuditEvent.objects.count() == 2
    assert chain_verify().ok


@pytest.mark.django_db(transaction=True)
def test_a_partition_created_later_has_the_parents_privileges_not_the_default_ones(roles):  # noqa: F811
    month = _month(5)
    _create_partition(month)
    _set_timestamp(_record(1)[0].id, datetime(month.year, month.month, 3, tzinfo=UTC))

    error = _attack(roles[0], f"DELETE FROM {_partition_name(month)}")  # noqa: S608

    assert "permission denied" in str(error)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT has_table_privilege(%s, %s, 'DELETE'), has_table_privilege(%s, %s, 'INSERT')",
            [roles[0], _partition_name(month), roles[0], _partition_name(month)],
        )
        assert cursor.fetchone() == (False, True)


@pytest.mark.django_db
def test_archiving_whole_old_months_detaches_their_partitions_and_the_rest_verifies(tmp_path, settings):
    settings.AUDIT_RETENTION_DAYS = 0
    for offset in (-3, -2, -1):
        _create_partition(_month(offset))
    old = _record(4)
    _move(old[:2], _month(-3))
    _move(old[2:], _month(-2))
    _rechain()
    newer = _record(2)
    before = datetime.combine(_month(-1), datetime.min.time(), tzinfo=UTC)
    output = tmp_path / "audit.jsonl.gz"

    archive = archive_create(before=before, output=output)

    assert (archive.first_id, archive.last_id, archive.event_count) == (old[0].id, old[-1].id, 4)
    assert not _exists(_partition_name(_month(-3)))
    assert not _exists(_partition_name(_month(-2)))
    assert _exists(_partition_name(_month(-1)))  # it ends after --before
    assert list(AuditEvent.objects.order_by("id").values_list("id", flat=True))[:2] == [e.id for e in newer]
    report = chain_verify()
    assert report.ok, report.problem
    archived = archive_verify(output)
    assert (archived.ok, archived.verified, archived.head_id) == (True, 4, old[-1].id)


@pytest.mark.django_db
def test_archived_events_in_the_default_partition_are_deleted_and_whole_months_detached(tmp_path, settings):
    settings.AUDIT_RETENTION_DAYS = 0
    for offset in (-3, -2):
        _create_partition(_month(offset))
    old = _record(5)
    _move(old[:1], _month(-4))  # no partition for that month: the default partition takes it
    _move(old[1:3], _month(-3))
    _move(old[3:], _month(-2))
    _rechain()
    assert _partition_of(old[0].id) == f"{TABLE}_default"
    newer = _record(1)
    before = datetime.combine(_month(-1), datetime.min.time(), tzinfo=UTC)

    archive = archive_create(before=before, output=tmp_path / "audit.jsonl.gz")

    assert archive.event_count == 5
    assert not _exists(_partition_name(_month(-3)))
    # The anchor's month: audit_archive_delete needs the anchor event there, so that month is deleted row by row.
    assert _exists(_partition_name(_month(-2)))
    assert list(AuditEvent.objects.filter(id__lte=old[-1].id)) == []
    assert AuditEvent.objects.filter(id=newer[0].id).exists()
    assert chain_verify().ok


@pytest.mark.django_db(transaction=True)
def test_application_role_cannot_call_the_detach_function(careless_roles):  # noqa: F811
    events = _record(2)

    error = _attack(careless_roles[0], f"SELECT audit_archive_detach('{_partition_of(events[0].id)}')")

    assert "permission denied for function audit_archive_detach" in str(error)
    assert AuditEvent.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_detach_function_refuses_a_partition_no_archive_anchors_and_the_default_partition(roles):  # noqa: F811
    events = _record(2)
    partition = _partition_of(events[0].id)

    unanchored = _attack(roles[1], f"SELECT audit_archive_detach('{partition}')")
    default = _attack(roles[1], f"SELECT audit_archive_detach('{TABLE}_default')")

    assert f"no audit archive anchors event #{events[-1].id} (the newest in {partition})" in str(unanchored)
    assert "the default partition of the audit trail is never detached" in str(default)
    assert _exists(partition)
    assert AuditEvent.objects.count() == 2


@pytest.mark.django_db
def test_partitions_ensure_creates_the_coming_months_once():
    assert not _exists(_partition_name(_month(4)))

    first = partitions_ensure(months_ahead=4)
    second = partitions_ensure(months_ahead=4)

    assert f"created: {_month(3):%Y-%m}, {_month(4):%Y-%m};" in first
    assert second.startswith("Audit partitions created: none;")
    assert _exists(_partition_name(_month(3)))
    assert _exists(_partition_name(_month(4)))
    event = _record(1)[0]
    assert _partition_of(event.id) == _partition_name(_month(0))


@pytest.mark.django_db
def test_partitions_ensure_names_a_month_whose_events_are_in_the_default_partition(capsys):
    event = _record(1)[0]
    month = _month(4)
    _set_timestamp(event.id, datetime(month.year, month.month, 2, tzinfo=UTC))
    assert _partition_of(event.id) == f"{TABLE}_default"

    with pytest.raises(PartitionError) as error:
        partitions_ensure(months_ahead=4)

    assert f"the default partition holds 1 audit events of {month:%Y-%m}: partition " in str(error.value)
    assert _exists(_partition_name(_month(3)))  # the other months were still created
    assert not _exists(_partition_name(month))
    call_command("audit", "partitions")
    listed = capsys.readouterr().out
    assert f"{_month(0):%Y-%m}  {_partition_name(_month(0))}" in listed
    assert "default  audit_auditevent_default" in listed
    assert listed.rstrip().endswith("1 events")


# --- Existing data carried over


def _migrate(target: str | None = None) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([("audit", target)] if target else executor.loader.graph.leaf_nodes("audit"))


def _rows() -> list[tuple]:
    return list(AuditEvent.objects.order_by("id").values_list("id", "timestamp", "hash", "prev_hash", "chain"))


@pytest.mark.django_db(transaction=True)
def test_existing_events_are_carried_into_partitions_and_back_unchanged():
    _migrate("0012_parallel_chains")
    try:
        assert not partitions_list()
        old = _record(3, "test.old")
        with transaction.atomic():
            _raw(f"UPDATE {TABLE} SET timestamp = timestamp - interval '100 days'")  # noqa: S608
            _rechain()
        _record(2, "test.recent")
        checkpoint_create()
        before = _rows()

        _migrate()

        assert _rows() == before
        assert _partition_of(old[0].id) == _partition_name(before[0][1].astimezone(UTC).date())
        assert partitions_list()[0].month == before[0][1].astimezone(UTC).date().replace(day=1)
        report = chain_verify()
        assert (report.ok, report.checkpoints) == (True, 1), report.problem
        added = _record(1, "test.after")[0]
        assert added.id > before[-1][0]
        assert added.prev_hash == before[-1][2]

        _migrate("0012_parallel_chains")

        assert _rows()[:-1] == before
        assert not partitions_list()
        assert chain_verify().ok
        assert _record(1, "test.back")[0].id > added.id
    finally:
        _migrate()


@pytest.mark.django_db
def test_daily_task_creates_the_months_and_a_conflict_is_recorded_as_a_failed_run_naming_the_month():
    from apps.audit.tasks import audit_partitions
    from apps.core.models import MaintenanceRun

    assert audit_partitions.apply(throw=True).get().startswith("Audit partitions created: none;")
    month = _month(2)
    with connection.cursor() as cursor:  # as if that month's partition had never been created
        cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {_partition_name(month)}")
    _set_timestamp(_record(1)[0].id, datetime(month.year, month.month, 9, tzinfo=UTC))

    with pytest.raises(PartitionError):
        audit_partitions.apply(throw=True).get()

    run = MaintenanceRun.objects.filter(task_name="maintenance.audit_partitions").latest("started_at")
    assert run.status == "failed"
    assert f"the default partition holds 1 audit events of {month:%Y-%m}" in run.message
