"""The report kinds: on seeded data, each gives exactly the expected rows, findings and summary."""

import inspect
import io
import threading
from datetime import UTC, datetime, timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Group, Permission
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import ApiToken
from apps.audit.models import AuditEvent
from apps.audit.services import event_record
from apps.backups.choices import BackupStatus, BackupTrigger
from apps.backups.models import Backup
from apps.compliance.choices import ReportKind
from apps.compliance.reports import REPORT_BUILDERS, ReportParams
from apps.core.choices import Role
from apps.jobs.choices import JobStatus
from apps.quantum.models import QuantumJob
from apps.registry.choices import InferenceKind, ModelTask
from apps.registry.models import InferenceJob, ModelVersion, RegisteredModel
from tests.factories import UserFactory
from tests.mfa import totp_code, totp_device_create

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
OTP_STEP = "/accounts/login/code/"


def build(kind: str, start: datetime, end: datetime, **filters) -> dict:
    """Run a builder; {section name: (section, its rows as lists)}."""
    sections = {}
    for section in REPORT_BUILDERS[kind](ReportParams(kind=kind, period_start=start, period_end=end, filters=filters)):
        rows = [list(row) for row in section.rows]
        assert all(len(row) == len(section.columns) for row in rows), section.name
        sections[section.name] = (section, rows)
    return sections


def by_first_column(section, rows) -> dict:
    return {row[0]: dict(zip(section.columns, row, strict=True)) for row in rows}


def around_now() -> tuple[datetime, datetime]:
    """A period that holds everything the test creates (rows get the database's current time)."""
    now = timezone.now()
    return now - timedelta(days=30), now + timedelta(hours=1)


def test_every_report_kind_has_a_builder():
    assert set(REPORT_BUILDERS) == set(ReportKind.values)


# --- access_review


def token_for(user, name: str, *, expires=None, revoked=None, scopes=("read",), secret_hash="a" * 64) -> ApiToken:
    return ApiToken.objects.create(
        owner=user, name=name, prefix=f"{name[:8]}{user.pk}", secret_hash=secret_hash, scopes=list(scopes),
        expires=expires, revoked=revoked,
    )  # fmt: skip


@pytest.fixture
def accounts(superuser, admin_user, operator_user, viewer_user, compliance_user, outsider_user, settings):
    now = timezone.now()
    totp_device_create(superuser)
    totp_device_create(compliance_user)
    TOTPDevice.objects.create(user=admin_user, name="never confirmed", confirmed=False)
    StaticDevice.objects.create(user=compliance_user, name="backup", confirmed=True)
    token_for(operator_user, "ci", expires=None, scopes=("read", "write"))
    token_for(operator_user, "notebook", expires=now + timedelta(days=30))
    token_for(viewer_user, "old", expires=None, revoked=now - timedelta(days=1))
    token_for(viewer_user, "lapsed", expires=now - timedelta(days=1))
    long_ago = now - timedelta(days=120)
    viewer_user.last_login = long_ago
    viewer_user.date_joined = long_ago
    viewer_user.save()
    outsider_user.last_login = long_ago  # no role and no token: no access to lose
    outsider_user.save()
    retired = UserFactory(username="rita-retired", roles=[Role.OPERATOR], is_active=False)
    retired.last_login = long_ago
    retired.save()
    AccessAttempt.objects.create(
        username=compliance_user.username, ip_address="10.0.0.1", user_agent="x", get_data="", post_data="",
        http_accept="", path_info="/", failures_since_start=settings.AXES_FAILURE_LIMIT,
    )  # fmt: skip
    return now


def test_access_review_flags_admin_without_mfa_token_without_expiry_and_dormant_access(accounts):
    sections = build(ReportKind.ACCESS_REVIEW, *around_now())
    section, rows = sections["accounts"]
    assert section.findings_column == "findings"
    accounts_by_name = by_first_column(section, rows)
    assert {name: row["findings"] for name, row in accounts_by_name.items()} == {
        "alice-admin": "privileged without MFA",
        "carl-compliance": "",
        "nora-nobody": "",
        "oscar-operator": "token without expiry",
        "rita-retired": "",
        "root": "privileged without a phishing-resistant factor (informational)",
        "vera-viewer": "no login for 90 days but still active with access",
    }
    assert list(accounts_by_name) == sorted(accounts_by_name)  # ordered by username


def test_access_review_row_shows_roles_devices_tokens_and_lockout(accounts, operator_user):
    section, rows = build(ReportKind.ACCESS_REVIEW, *around_now())["accounts"]
    rows = by_first_column(section, rows)
    admin = rows["alice-admin"]
    assert (admin["staff"], admin["superuser"], admin["roles"]) == ("yes", "no", "admin")
    assert admin["mfa_devices"] == "totp (unconfirmed)"
    assert rows["carl-compliance"]["mfa_devices"] == "totp (confirmed); recovery codes (confirmed)"
    assert rows["carl-compliance"]["locked_out"] == "yes"
    assert rows["alice-admin"]["locked_out"] == "no"
    operator = rows["oscar-operator"]
    assert (operator["api_tokens"], operator["token_scopes"]) == (2, "read, write")
    assert operator["token_expiry"].startswith(f"ci{operator_user.pk}: never; notebook")
    # A revoked token and an expired one are no access at all.
    assert (rows["vera-viewer"]["api_tokens"], rows["vera-viewer"]["token_expiry"]) == (0, "")
    assert rows["vera-viewer"]["last_login"] == (accounts - timedelta(days=120)).astimezone(UTC).isoformat(
        timespec="seconds"
    )


def test_access_review_summary_counts_superusers_accounts_and_findings(accounts):
    section, _ = build(ReportKind.ACCESS_REVIEW, *around_now())["accounts"]
    summary = section.summary
    assert summary["accounts"] == 7
    assert summary["active accounts"] == 6
    assert summary["superusers"] == 1
    assert summary["accounts with findings"] == 3
    assert summary["privileged without MFA"] == 1
    assert summary["MFA required but not enrolled"] == 0
    assert summary["token without expiry"] == 1
    assert summary["no login for 90 days but still active with access"] == 1
    assert summary["locked out now"] == 1


@pytest.mark.parametrize(
    "privilege",
    [{"is_superuser": True}, {"is_staff": True}, {"roles": [Role.ADMIN]}],
    ids=["superuser", "staff", "admin"],
)
def test_each_kind_of_privilege_with_only_an_unconfirmed_device_is_flagged(db, privilege):
    user = UserFactory(username="privileged", **privilege)
    TOTPDevice.objects.create(user=user, name="pending", confirmed=False)
    section, rows = build(ReportKind.ACCESS_REVIEW, *around_now())["accounts"]
    assert by_first_column(section, rows)["privileged"]["findings"] == "privileged without MFA"


def test_a_compliance_officer_without_mfa_is_flagged_as_required_not_enrolled(compliance_user):
    section, rows = build(ReportKind.ACCESS_REVIEW, *around_now())["accounts"]
    assert by_first_column(section, rows)["carl-compliance"]["findings"] == "MFA required but not enrolled"
    assert section.summary["MFA required but not enrolled"] == 1


def test_access_review_queries_do_not_grow_with_the_number_of_accounts(accounts):
    with CaptureQueriesContext(connection) as few:
        build(ReportKind.ACCESS_REVIEW, *around_now())
    for number in range(10):
        user = UserFactory(username=f"extra{number}", roles=[Role.OPERATOR, Role.VIEWER])
        totp_device_create(user)
        token_for(user, f"t{number}")
    with CaptureQueriesContext(connection) as many:
        build(ReportKind.ACCESS_REVIEW, *around_now())
    assert len(many) == len(few)


# --- mfa_coverage


def test_mfa_coverage_counts_per_role_and_lists_those_without(accounts):
    second_admin = UserFactory(username="adam-admin", roles=[Role.ADMIN])
    totp_device_create(second_admin)
    sections = build(ReportKind.MFA_COVERAGE, *around_now())
    section, rows = sections["roles"]
    assert rows == [
        ["admin", 2, 1, 1, 50.0, "yes", "MFA required but 1 without"],
        ["operator", 1, 0, 1, 0.0, "no", ""],
        ["viewer", 1, 0, 1, 0.0, "no", ""],
        ["compliance", 1, 1, 0, 100.0, "yes", ""],
        ["(no role)", 2, 1, 1, 50.0, "no", ""],  # root (with MFA) and nora; the retired account is inactive
    ]
    assert section.summary == {"active accounts": 7, "with MFA": 3, "percentage with MFA": 42.9}
    without, without_rows = sections["without_mfa"]
    assert [row[0] for row in without_rows] == ["alice-admin", "nora-nobody", "oscar-operator", "vera-viewer"]
    assert by_first_column(without, without_rows)["alice-admin"]["findings"] == "MFA required but not enrolled"
    assert without.summary == {"without MFA": 4, "of which MFA required": 1}


def test_mfa_coverage_of_a_role_without_users_has_no_percentage(db):
    _, rows = build(ReportKind.MFA_COVERAGE, *around_now())["roles"]
    assert rows[0] == ["admin", 0, 0, 0, "", "yes", ""]


# --- authentication


def _fail_login(client, username: str, ip: str):
    client.post(LOGIN, {"username": username, "password": "wrong password"}, REMOTE_ADDR=ip)


def test_authentication_counts_failures_and_lockouts_per_user_and_address(
    client, operator_user, viewer_user, password, settings
):
    _fail_login(client, "mallory", "10.0.0.9")  # before the period
    _fail_login(client, "mallory", "10.0.0.1")
    start = AuditEvent.objects.order_by("-id").first().timestamp
    _fail_login(client, "mallory", "10.0.0.1")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _fail_login(client, operator_user.username, "10.0.0.2")
    device = totp_device_create(viewer_user)
    client.post(LOGIN, {"username": viewer_user.username, "password": password}, REMOTE_ADDR="10.0.0.3")
    wrong = "000000" if totp_code(device.key) != "000000" else "111111"
    client.post(OTP_STEP, {"code": wrong}, REMOTE_ADDR="10.0.0.3")
    _fail_login(client, "mallory", "10.0.0.1")
    end = AuditEvent.objects.order_by("-id").first().timestamp  # the period ends before this one
    assert AuditEvent.objects.filter(action="auth.lockout").count() == 1
    assert AuditEvent.objects.filter(action="auth.otp.failed").count() == 1

    sections = build(ReportKind.AUTHENTICATION, start, end)
    users, user_rows = sections["by_user"]
    assert [row[:5] + row[7:] for row in user_rows] == [
        ["mallory", 2, 0, 0, 1, ""],
        ["oscar-operator", settings.AXES_FAILURE_LIMIT, 0, 1, 1, "locked out 1 time"],
        ["vera-viewer", 0, 1, 0, 1, ""],
    ]
    mallory = by_first_column(users, user_rows)["mallory"]
    in_period = AuditEvent.objects.filter(object_repr="mallory", timestamp__gte=start, timestamp__lt=end)
    times = list(in_period.order_by("id").values_list("timestamp", flat=True))
    assert len(times) == 2
    assert (mallory["first"], mallory["last"]) == tuple(time.isoformat(timespec="seconds") for time in times)
    _, ip_rows = sections["by_ip"]
    assert [row[:5] for row in ip_rows] == [
        ["10.0.0.1", 2, 0, 0, 1],
        ["10.0.0.2", settings.AXES_FAILURE_LIMIT, 0, 1, 1],
        ["10.0.0.3", 0, 1, 0, 1],
    ]
    _, lockout_rows = sections["lockouts"]
    assert [row[2:4] for row in lockout_rows] == [["oscar-operator", "10.0.0.2"]]
    assert users.summary == {
        "failed logins": 2 + settings.AXES_FAILURE_LIMIT,
        "OTP failures": 1,
        "lockouts": 1,
        "usernames": 3,
        "client addresses": 3,
    }


# --- audit_trail


@pytest.fixture
def trail(operator_user, admin_user):
    event_record(action="test.before")
    events = [
        event_record(action="quantum.job.cancelled", actor=operator_user),
        event_record(action="backup.created", actor=admin_user),
        event_record(action="quantum.job.rerun", actor=admin_user, changes={"from": 1}),
    ]
    after = event_record(action="test.after")
    return events, events[0].timestamp, after.timestamp


def _ids(sections) -> list[int]:
    return [row[0] for row in sections["events"][1]]


def test_audit_trail_holds_exactly_the_events_of_the_period(trail):
    events, start, end = trail
    sections = build(ReportKind.AUDIT_TRAIL, start, end)
    assert _ids(sections) == [event.id for event in events]
    section, rows = sections["events"]
    stored = AuditEvent.objects.get(id=events[2].id)
    row = dict(zip(section.columns, rows[2], strict=True))
    assert row["timestamp"] == stored.timestamp.isoformat(timespec="microseconds")
    assert (row["action"], row["actor_username"], row["changes"]) == ("quantum.job.rerun", "alice-admin", '{"from":1}')
    assert (row["prev_hash"], row["hash"]) == (stored.prev_hash, stored.hash)


def test_audit_trail_honours_action_prefix_and_actor_filters(trail):
    events, start, end = trail
    assert _ids(build(ReportKind.AUDIT_TRAIL, start, end, action_prefix="quantum.")) == [events[0].id, events[2].id]
    assert _ids(build(ReportKind.AUDIT_TRAIL, start, end, actor="alice-admin")) == [events[1].id, events[2].id]
    both = build(ReportKind.AUDIT_TRAIL, start, end, action_prefix="quantum.", actor="alice-admin")
    assert _ids(both) == [events[2].id]
    assert both["events"][0].summary["events"] == 1


def test_audit_trail_rows_stream_and_summary_has_chain_result_and_head_at_period_end(trail):
    events, start, end = trail
    section = next(REPORT_BUILDERS[ReportKind.AUDIT_TRAIL](ReportParams(ReportKind.AUDIT_TRAIL, start, end, {})))
    assert inspect.isgenerator(section.rows)  # read from a cursor as it is written, never loaded whole
    assert "chain intact in period" not in section.summary  # completed once the rows have been read
    assert len(list(section.rows)) == 3
    assert section.summary["chain intact in period"] == "yes"
    assert section.summary["chain verification"].startswith("Verified ")
    assert section.summary["head hash at end of period"] == events[-1].hash
    assert section.summary["events"] == 3


def test_audit_trail_summary_reports_a_tampered_event_in_the_period(trail):
    events, start, end = trail
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = 'replica'")
        cursor.execute("UPDATE audit_auditevent SET object_repr = 'edited' WHERE id = %s", [events[1].id])
        cursor.execute("SET LOCAL session_replication_role = 'origin'")
    summary = build(ReportKind.AUDIT_TRAIL, start, end)["events"][0].summary
    assert summary["chain intact in period"] == "no"
    assert f"#{events[1].id}" in summary["chain verification"]


def _tamper(event_id: int) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = 'replica'")
        cursor.execute("UPDATE audit_auditevent SET object_repr = 'edited' WHERE id = %s", [event_id])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_long_periods_have_their_chain_verified_while_the_rows_are_written(monkeypatch, trail, fmt):
    from apps.compliance.rendering import render
    from apps.compliance.reports import audit as audit_reports

    monkeypatch.setattr(audit_reports, "CONCURRENT_VERIFY_MIN_EVENTS", 2)  # this period counts as long
    verified_in = []
    chain_summary = audit_reports._chain_summary

    def chain_summary_noting_its_thread(first_id, last_id):
        verified_in.append(threading.current_thread().name)
        return chain_summary(first_id, last_id)

    monkeypatch.setattr(audit_reports, "_chain_summary", chain_summary_noting_its_thread)
    events, start, end = trail
    _tamper(events[1].id)
    section = next(REPORT_BUILDERS[ReportKind.AUDIT_TRAIL](ReportParams(ReportKind.AUDIT_TRAIL, start, end, {})))

    counts = render([section], fmt, io.BytesIO(), {"generated_at": end.isoformat()})

    assert counts == {"events": 3}
    assert section.summary["chain intact in period"] == "no"
    assert f"at event #{events[1].id}: content changed" in section.summary["chain verification"]
    assert section.summary["head hash at end of period"] == events[-1].hash
    assert len(verified_in) == 1
    assert verified_in[0].startswith("report-chain-verify")  # on its own thread, beside the rows


# --- privileged_changes


def test_privileged_changes_lists_role_account_mfa_and_schedule_changes_only(operator_user, admin_user):
    admin_group = Group.objects.get(name=Role.ADMIN)
    viewer_group, _ = Group.objects.get_or_create(name=Role.VIEWER)
    start = event_record(action="test.start").timestamp
    operator_user.groups.add(admin_group)
    viewer_group.permissions.add(Permission.objects.get(codename="view_backup"))
    IntervalSchedule.objects.create(every=10, period=IntervalSchedule.SECONDS)
    event_record(action="mfa.removed", actor=admin_user, obj=operator_user)
    event_record(action="quantum.job.cancelled", actor=operator_user)  # not privileged
    end = event_record(action="test.end").timestamp
    operator_user.groups.remove(admin_group)  # after the period

    section, rows = build(ReportKind.PRIVILEGED_CHANGES, start, end)["changes"]
    listed = [dict(zip(section.columns, row, strict=True)) for row in rows]
    assert [(row["category"], row["action"]) for row in listed] == [
        ("accounts", "accounts.user.changed"),
        ("roles and permissions", "accounts.role.changed"),
        ("schedule", "schedule.created"),
        ("second factors and lockouts", "mfa.removed"),
    ]
    assert listed[0]["object_id"] == str(operator_user.pk)
    assert str(admin_group.pk) in listed[0]["changes"]
    assert section.summary["changes"] == 4
    assert section.summary["schedule"] == 1


# --- backup_evidence

MAY = (datetime(2025, 5, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC))


def backup_at(started_at: datetime, status: str = BackupStatus.COMPLETED, *, reason: str | None = None) -> Backup:
    backup = Backup.objects.create(
        status=status, compression="zstd", key_id="0123456789abcdef", storage_name="backups",
        database_engine="postgresql", trigger=BackupTrigger.SCHEDULE, size_bytes=1000,
        error="pg_dump exited with 1" if status == BackupStatus.FAILED else "",
    )  # fmt: skip
    verified = status in (BackupStatus.VERIFIED, BackupStatus.VERIFY_FAILED)
    Backup.objects.filter(pk=backup.pk).update(
        started_at=started_at,
        finished_at=started_at + timedelta(minutes=2),
        verified_at=started_at + timedelta(days=1) if verified else None,
        verification={"ok": status == BackupStatus.VERIFIED, "reason": reason, "message": "checked"}
        if verified
        else {},
    )
    backup.refresh_from_db()
    return backup


def weekly_verified(*days: int, hour: int = 2) -> list[Backup]:
    return [backup_at(datetime(2025, 5, day, hour, tzinfo=UTC), BackupStatus.VERIFIED) for day in days]


def test_backup_policy_holds_with_a_verified_backup_every_week():
    backup_at(datetime(2025, 4, 28, 2, tzinfo=UTC), BackupStatus.VERIFIED)  # the last one before the period
    weekly_verified(3, 10, 17, 24, 31)
    backup_at(datetime(2025, 5, 20, 2, tzinfo=UTC))  # nightly, not verified
    sections = build(ReportKind.BACKUP_EVIDENCE, *MAY)
    section, rows = sections["backups"]
    assert len(rows) == 6
    assert section.summary["policy held"] == "yes"
    assert section.summary["longest gap"] == "7 days 0 hours"
    assert section.summary["verified"] == 5
    _, gap_rows = sections["gaps"]
    assert gap_rows[0][0] == "2025-04-28T02:00:00+00:00"
    assert all(row[-1] == "" for row in gap_rows)


def test_a_week_without_a_verified_backup_breaks_the_policy():
    backup_at(datetime(2025, 4, 28, 2, tzinfo=UTC), BackupStatus.VERIFIED)
    weekly_verified(3, 10, 17, 31)  # nothing verified from the 17th to the 31st
    for day in range(18, 31):
        backup_at(datetime(2025, 5, day, 2, tzinfo=UTC))
    sections = build(ReportKind.BACKUP_EVIDENCE, *MAY)
    section, _ = sections["backups"]
    assert section.summary["policy held"] == "no"
    assert section.summary["longest gap"] == "14 days 0 hours"
    assert (section.summary["longest gap from"], section.summary["longest gap to"]) == (
        "2025-05-17T02:00:00+00:00",
        "2025-05-31T02:00:00+00:00",
    )
    _, gap_rows = sections["gaps"]
    assert [row[-1] for row in gap_rows if row[-1]] == ["no verified backup for more than 7 days"]
    assert sections["gaps"][0].summary == {"gaps over the policy": 1}


def test_no_verified_backup_in_the_period_breaks_the_policy_from_its_start():
    backup_at(datetime(2025, 5, 2, 2, tzinfo=UTC))
    section, _ = build(ReportKind.BACKUP_EVIDENCE, *MAY)["backups"]
    assert section.summary["policy held"] == "no"
    assert section.summary["longest gap"] == "31 days 0 hours"
    assert section.summary["verified"] == 0


def test_backup_evidence_flags_failed_backups_and_failed_verifications():
    weekly_verified(1, 8, 15, 22, 29)
    failed = backup_at(datetime(2025, 5, 9, 2, tzinfo=UTC), BackupStatus.FAILED)
    bad = backup_at(datetime(2025, 5, 10, 2, tzinfo=UTC), BackupStatus.VERIFY_FAILED, reason="checksum")
    backup_at(datetime(2025, 6, 2, 2, tzinfo=UTC), BackupStatus.FAILED)  # after the period
    section, rows = build(ReportKind.BACKUP_EVIDENCE, *MAY)["backups"]
    flagged = {row[0]: dict(zip(section.columns, row, strict=True)) for row in rows if row[-1]}
    assert {pk: row["findings"] for pk, row in flagged.items()} == {
        failed.pk: "backup failed",
        bad.pk: "verification failed",
    }
    assert flagged[bad.pk]["verification"] == "failed (checksum)"
    assert flagged[failed.pk]["message"] == "pg_dump exited with 1"
    assert (section.summary["failed"], section.summary["verification failures"]) == (1, 1)
    assert section.summary["policy held"] == "yes"


# --- usage and subject_export


def quantum_job(owner, *, shots: int, created_at: datetime | None = None, status: str = "completed") -> QuantumJob:
    job = QuantumJob.objects.create(
        owner=owner, source="OPENQASM 2.0;", qasm_version=2, num_qubits=2, num_clbits=2, depth=2, shots=shots,
        status=status,
    )  # fmt: skip
    if created_at is not None:
        QuantumJob.objects.filter(pk=job.pk).update(created_at=created_at)
    return job


def inference_job(owner, version: ModelVersion, *, rows: int, created_at: datetime | None = None) -> InferenceJob:
    job = InferenceJob.objects.create(
        owner=owner, version=version, kind=InferenceKind.BATCH, input_file="registry/inputs/x.csv",
        input_format="csv", progress_total=rows, progress_done=rows, status=JobStatus.COMPLETED,
    )  # fmt: skip
    if created_at is not None:
        InferenceJob.objects.filter(pk=job.pk).update(created_at=created_at)
    return job


def model_version(name: str, owner) -> ModelVersion:
    model = RegisteredModel.objects.create(name=name, task=ModelTask.TEXT_CLASSIFICATION, owner=owner)
    return ModelVersion.objects.create(
        model=model, version=1, artifact=f"registry/artifacts/{name}-v1", sha256="0" * 64, size_bytes=1,
        created_by=owner,
    )  # fmt: skip


def test_usage_counts_jobs_shots_and_rows_of_the_period(operator_user, viewer_user, admin_user):
    start, end = around_now()
    quantum_job(operator_user, shots=1000)
    quantum_job(operator_user, shots=24, status="failed")
    quantum_job(viewer_user, shots=7)
    quantum_job(viewer_user, shots=5000, created_at=start - timedelta(days=1))  # before the period
    sentiment, tagger = model_version("sentiment", admin_user), model_version("tagger", admin_user)
    inference_job(operator_user, sentiment, rows=10)
    inference_job(viewer_user, sentiment, rows=5)
    inference_job(operator_user, tagger, rows=3)
    inference_job(operator_user, tagger, rows=99, created_at=start - timedelta(days=3))
    sections = build(ReportKind.USAGE, start, end)
    quantum, quantum_rows = sections["quantum"]
    assert quantum_rows == [["oscar-operator", 2, 1, 1, 0, 1024], ["vera-viewer", 1, 1, 0, 0, 7]]
    assert quantum.summary == {"quantum jobs": 3, "shots": 1031, "users running quantum jobs": 2}
    inference, inference_rows = sections["inference"]
    assert inference_rows == [["sentiment", 2, 2, 0, 0, 15, 15, 2], ["tagger", 1, 1, 0, 0, 3, 3, 1]]
    assert inference.summary == {"inference jobs": 3, "inference rows": 18}


SECRET_HASH = "5ec7e7" + "f" * 58


def test_subject_export_holds_only_that_users_data_and_no_token_hash(operator_user, viewer_user, admin_user):
    token_for(operator_user, "ci", secret_hash=SECRET_HASH, expires=None)
    token_for(viewer_user, "theirs")
    device = totp_device_create(operator_user)
    recovery = StaticDevice.objects.create(user=operator_user, name="backup", confirmed=True)
    StaticToken.objects.create(device=recovery, token="recovery1")
    mine = quantum_job(operator_user, shots=10)
    quantum_job(viewer_user, shots=20)
    version = model_version("sentiment", admin_user)
    my_inference = inference_job(operator_user, version, rows=4)
    inference_job(viewer_user, version, rows=5)
    my_event = event_record(action="quantum.job.cancelled", actor=operator_user, obj=mine)
    event_record(action="quantum.job.cancelled", actor=viewer_user)

    start, end = around_now()
    sections = build(ReportKind.SUBJECT_EXPORT, start, end, username=operator_user.username)
    assert list(sections) == [
        "profile", "mfa_devices", "api_tokens", "sessions", "quantum_jobs", "inference_jobs", "audit_events",
    ]  # fmt: skip
    profile = dict(sections["profile"][1])
    assert (profile["username"], profile["email"], profile["roles"]) == ("oscar-operator", operator_user.email,
                                                                          "operator")  # fmt: skip
    assert [row[1] for row in sections["api_tokens"][1]] == [f"ci{operator_user.pk}"]
    assert [row[:3] for row in sections["mfa_devices"][1]] == [
        ["totp", device.name, "yes"],
        ["recovery codes", "backup", "yes"],
    ]
    assert [row[0] for row in sections["quantum_jobs"][1]] == [mine.pk]
    assert [row[0] for row in sections["inference_jobs"][1]] == [my_inference.pk]
    audit_ids = [row[0] for row in sections["audit_events"][1]]
    assert my_event.id in audit_ids
    assert set(AuditEvent.objects.filter(id__in=audit_ids).values_list("actor", flat=True)) == {operator_user.pk}

    everything = repr([rows for _, rows in sections.values()])
    assert SECRET_HASH not in everything
    assert device.key not in everything
    assert "recovery1" not in everything
    assert all("hash" not in column for section, _ in sections.values() for column in section.columns)


def test_subject_export_of_an_unknown_user_is_refused(db):
    with pytest.raises(LookupError, match="ghost"):
        build(ReportKind.SUBJECT_EXPORT, *around_now(), username="ghost")


def test_audit_trail_csv_written_by_the_database_holds_the_same_rows_as_formatted_ones(trail):
    import csv
    import io

    from apps.compliance.rendering import cell_text, render

    _, start, end = trail
    params = ReportParams(ReportKind.AUDIT_TRAIL, start, end, {"action_prefix": "quantum."})
    section = next(REPORT_BUILDERS[ReportKind.AUDIT_TRAIL](params))
    expected = [[cell_text(value) for value in row] for row in section.rows]
    out = io.BytesIO()

    counts = render(REPORT_BUILDERS[ReportKind.AUDIT_TRAIL](params), "csv", out, {"generated_at": end.isoformat()})

    header, *rows = list(csv.reader(io.StringIO(out.getvalue().decode())))
    assert header == section.columns
    assert rows == expected
    assert counts == {"events": 2}
