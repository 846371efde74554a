"""Retention of backups: which ones the GFS policy keeps, and pruning the rest (files gone, rows kept as evidence)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.base import ContentFile

from apps.audit.models import AuditEvent
from apps.backups.choices import BackupStatus, BackupTrigger
from apps.backups.models import Backup
from apps.backups.retention import backups_prune, retention_plan
from apps.backups.services import backup_storage
from apps.backups.tasks import backup_prune_daily
from apps.core.choices import MaintenanceStatus
from apps.core.models import MaintenanceRun

pytestmark = pytest.mark.django_db

# A Sunday: its ISO week 2025-W24 runs from Monday 9 June.
NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)


def backup_at(started_at: datetime, status: str = BackupStatus.COMPLETED, *, with_file: bool = False) -> Backup:
    """A backup row that started at ``started_at`` (``started_at`` is set by the database, so it is updated after)."""
    backup = Backup.objects.create(
        status=status,
        compression="zstd",
        key_id="0123456789abcdef",
        storage_name="backups",
        database_engine="postgresql",
        trigger=BackupTrigger.SCHEDULE,
        path=f"opsdeck-{started_at:%Y%m%dT%H%M%SZ}.backup",
        size_bytes=5,
        duration_seconds=1.5,
    )
    finished_at = started_at + timedelta(minutes=2)
    verified_at = finished_at if status in (BackupStatus.VERIFIED, BackupStatus.VERIFY_FAILED) else None
    Backup.objects.filter(pk=backup.pk).update(started_at=started_at, finished_at=finished_at, verified_at=verified_at)
    if with_file:
        backup_storage().save(backup.path, ContentFile(b"bytes"))
    backup.refresh_from_db()
    return backup


@pytest.fixture
def backup_dir(tmp_path, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    return tmp_path


@pytest.fixture
def four_months(backup_dir) -> dict[str, Backup]:
    """One nightly backup a day from 15 February to 15 June, a manual one on 15 June at 10:00, two of them
    verified, and backups of every other status that retention must leave alone; each with its file."""
    backups = {}
    day = datetime(2025, 2, 15, 1, 30, tzinfo=UTC)
    while day <= NOW:
        status = BackupStatus.VERIFIED if day.date().isoformat() in ("2025-02-20", "2025-03-10") else "completed"
        backups[day.date().isoformat()] = backup_at(day, status, with_file=True)
        day += timedelta(days=1)
    backups["2025-06-15 manual"] = backup_at(NOW.replace(hour=10), with_file=True)
    backups["failed"] = backup_at(datetime(2025, 1, 2, tzinfo=UTC), BackupStatus.FAILED)
    backups["verify_failed"] = backup_at(datetime(2025, 1, 3, tzinfo=UTC), BackupStatus.VERIFY_FAILED, with_file=True)
    backups["pruned"] = backup_at(datetime(2025, 1, 4, tzinfo=UTC), BackupStatus.PRUNED)
    backups["running"] = backup_at(datetime(2025, 1, 5, tzinfo=UTC), BackupStatus.RUNNING)
    return backups


KEPT_WITH_3_2_3 = {
    "2025-06-15 manual": "daily 1/3 (newest of 2025-06-15); weekly 1/2 (newest of 2025-W24); "
    "monthly 1/3 (newest of 2025-06)",
    "2025-06-14": "daily 2/3 (newest of 2025-06-14)",
    "2025-06-13": "daily 3/3 (newest of 2025-06-13)",
    "2025-06-08": "weekly 2/2 (newest of 2025-W23)",
    "2025-05-31": "monthly 2/3 (newest of 2025-05)",
    "2025-04-30": "monthly 3/3 (newest of 2025-04)",
    "2025-03-10": "newest verified backup",
}


def _plan(backups, **keep):
    restorable = [backup for backup in backups.values() if backup.status in ("completed", "verified")]
    return retention_plan(restorable, now=NOW, **keep)


def test_plan_keeps_newest_of_each_day_week_and_month_and_the_newest_verified(four_months):
    plan = _plan(four_months, keep_daily=3, keep_weekly=2, keep_monthly=3)
    names = {backup.pk: name for name, backup in four_months.items()}

    kept = {names[backup.pk]: why for backup, keep, why in plan if keep}

    assert kept == KEPT_WITH_3_2_3
    assert len(plan) == 122
    assert [backup.started_at for backup, _, _ in plan] == sorted((b.started_at for b, _, _ in plan), reverse=True)


def test_plan_gives_the_reason_and_age_of_each_backup_it_drops(four_months):
    plan = _plan(four_months, keep_daily=3, keep_weekly=2, keep_monthly=3)
    why = {backup.pk: why for backup, keep, why in plan if not keep}

    assert why[four_months["2025-06-15"].pk] == (
        "not the newest of the newest 3 days, 2 ISO weeks or 3 months with backups, "
        "and not the newest verified backup; 0.4 days old"
    )
    assert why[four_months["2025-02-20"].pk].endswith("115.4 days old")


def test_plan_keeps_the_newest_verified_backup_even_when_every_rule_keeps_nothing(four_months):
    plan = _plan(four_months, keep_daily=0, keep_weekly=0, keep_monthly=0)

    assert [(backup.pk, why) for backup, keep, why in plan if keep] == [
        (four_months["2025-03-10"].pk, "newest verified backup")
    ]


def test_plan_counts_days_that_have_backups_so_a_gap_does_not_shrink_what_is_kept():
    # Backups stopped on 1 May: the three newest days with a backup are still kept six weeks later.
    backups = [backup_at(datetime(2025, 4, day, 1, 30, tzinfo=UTC)) for day in range(20, 31)]
    backups.append(backup_at(datetime(2025, 5, 1, 1, 30, tzinfo=UTC)))

    plan = retention_plan(backups, now=NOW, keep_daily=3, keep_weekly=0, keep_monthly=0)

    kept = [f"{backup.started_at:%m-%d}" for backup, keep, _ in plan if keep]
    assert kept == ["05-01", "04-30", "04-29"]


def test_plan_counts_a_day_in_the_current_time_zone(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    # 23:30 UTC on 1 June is already 2 June in Berlin: the same day as the backup at 08:00 UTC, which is newer.
    late = backup_at(datetime(2025, 6, 1, 23, 30, tzinfo=UTC))
    morning = backup_at(datetime(2025, 6, 2, 8, 0, tzinfo=UTC))

    plan = retention_plan([late, morning], now=NOW, keep_daily=2, keep_weekly=0, keep_monthly=0)

    assert [(backup.pk, keep) for backup, keep, _ in plan] == [(morning.pk, True), (late.pk, False)]


def _snapshot(backups):
    return {
        name: (Backup.objects.get(pk=backup.pk).status, backup_storage().exists(backup.path))
        for name, backup in backups.items()
    }


def test_dry_run_changes_nothing_and_lists_every_backup_with_its_reason(four_months, settings):
    settings.BACKUP_KEEP_DAILY, settings.BACKUP_KEEP_WEEKLY, settings.BACKUP_KEEP_MONTHLY = 3, 2, 3
    before = _snapshot(four_months)

    report = backups_prune(dry_run=True)

    assert _snapshot(four_months) == before
    assert not AuditEvent.objects.filter(action="backup.pruned").exists()
    lines = report.splitlines()
    assert len(lines) == 122 + 1
    manual = four_months["2025-06-15 manual"]
    assert lines[0] == f"keep         #{manual.pk} of 2025-06-15 10:00 UTC: {KEPT_WITH_3_2_3['2025-06-15 manual']}"
    assert f"keep         #{four_months['2025-03-10'].pk} of 2025-03-10 01:30 UTC: newest verified backup" in lines
    assert (
        f"would prune  #{four_months['2025-02-20'].pk} of 2025-02-20 01:30 UTC: not the newest of the newest 3 days"
        in report
    )
    assert lines[-1] == "Dry run: would prune 115 of 122 backups; nothing was changed."


def test_prune_deletes_files_marks_rows_pruned_and_audits_why(four_months, settings, backup_dir):
    settings.BACKUP_KEEP_DAILY, settings.BACKUP_KEEP_WEEKLY, settings.BACKUP_KEEP_MONTHLY = 3, 2, 3

    report = backups_prune()

    after = _snapshot(four_months)
    for name in KEPT_WITH_3_2_3:
        assert after[name][1] is True, name
        assert after[name][0] in ("completed", "verified"), name
    pruned = [name for name, (status, _) in after.items() if status == "pruned" and name != "pruned"]
    assert len(pruned) == 115
    assert all(after[name][1] is False for name in pruned)
    # Failed, running, already pruned and failed-verification backups are left as they were.
    assert after["failed"] == ("failed", False)
    assert after["running"] == ("running", False)
    assert after["verify_failed"] == ("verify_failed", True)
    assert sorted(path.name for path in backup_dir.iterdir()) == sorted(
        [four_months[name].path for name in KEPT_WITH_3_2_3] + [four_months["verify_failed"].path]
    )
    events = AuditEvent.objects.filter(action="backup.pruned")
    assert events.count() == 115
    event = events.get(object_id=str(four_months["2025-02-20"].pk))
    assert event.changes["path"] == four_months["2025-02-20"].path
    assert event.changes["reason"].startswith("not the newest of the newest 3 days")
    assert report.splitlines()[-1] == "Pruned 115 of 122 backups; kept 7."


def test_pruning_again_prunes_nothing_more(four_months, settings):
    settings.BACKUP_KEEP_DAILY, settings.BACKUP_KEEP_WEEKLY, settings.BACKUP_KEEP_MONTHLY = 3, 2, 3
    backups_prune()

    assert backups_prune() == "Pruned 0 of 7 backups; kept 7."
    assert AuditEvent.objects.filter(action="backup.pruned").count() == 115


def test_daily_prune_task_records_its_run(four_months, settings):
    settings.BACKUP_KEEP_DAILY, settings.BACKUP_KEEP_WEEKLY, settings.BACKUP_KEEP_MONTHLY = 3, 2, 3

    backup_prune_daily.apply()

    run = MaintenanceRun.objects.get(task_name="maintenance.backup_prune_daily")
    assert run.status == MaintenanceStatus.SUCCEEDED
    assert run.message.endswith("Pruned 115 of 122 backups; kept 7.")
