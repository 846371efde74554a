"""Each event is produced once, by the service where it happens, and recorded in the audit trail.

Whoever is told (email, webhooks) is the channels' business and tested with them; here the audit trail's
``notification.<event>`` row is the proof that the producer announced the event, with what.
"""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.signals import user_logged_in
from django.test import RequestFactory
from django.utils import timezone

from apps.accounts.tokens import token_create, token_revoke, tokens_announce_expiring
from apps.audit.models import AuditEvent
from apps.audit.services import chain_check, chain_verify_and_report, checkpoint_create, event_record
from apps.backups.choices import BackupStatus
from apps.backups.restore import backup_verify
from apps.backups.services import backup_failed
from apps.backups.staleness import backups_staleness_check
from apps.compliance.choices import ReportFormat, ReportKind
from apps.compliance.services import previous_month, report_request
from apps.jobs.choices import JobStatus

from ..audit.test_audit_chain import _raw
from ..backups.conftest import backup_row
from ..compliance.test_compliance_api import run_report

pytestmark = pytest.mark.django_db


def announced(event: str) -> list[dict]:
    """What the audit trail recorded of each announcement of ``event``, oldest first."""
    rows = AuditEvent.objects.filter(action=f"notification.{event}").order_by("id")
    return [{"object_id": row.object_id, **json.loads(row.changes_text or "{}")} for row in rows]


# --- backups


def test_a_failed_backup_is_announced_with_its_reason(backup_dir):
    backup = backup_row(status=BackupStatus.RUNNING)

    backup_failed(backup, "pg_dump failed (exit 1): connection refused")

    (event,) = announced("backup.failed")
    assert event["object_id"] == str(backup.pk)
    assert event["summary"] == f"Backup #{backup.pk} failed: pg_dump failed (exit 1): connection refused"


def test_a_failed_verification_is_announced_as_a_backup_failure(backup_dir, admin_user):
    backup = backup_row(path="gone.backup")  # no such file

    backup_verify(backup=backup, actor=admin_user)

    (event,) = announced("backup.failed")
    assert event["summary"].startswith(f"Backup #{backup.pk} failed verification: missing")


def test_a_passed_verification_announces_nothing(stored_backup, admin_user):
    assert backup_verify(backup=stored_backup, actor=admin_user).status == BackupStatus.VERIFIED
    assert announced("backup.failed") == []


def test_no_recent_verified_backup_is_announced_once_a_day(settings):
    settings.BACKUP_VERIFIED_MAX_AGE_DAYS = 8
    old = backup_row(status=BackupStatus.VERIFIED)
    backup_row(status=BackupStatus.COMPLETED)  # recent, but never verified
    type(old).objects.filter(pk=old.pk).update(started_at=timezone.now() - timedelta(days=9))

    first = backups_staleness_check()
    again = backups_staleness_check()
    tomorrow = backups_staleness_check(now=timezone.now() + timedelta(days=1, minutes=1))

    assert first.startswith("No backup taken within the last 8 days has been verified")
    assert again == "No recent verified backup; already announced within the last day."
    assert tomorrow.startswith("No backup taken")
    assert len(announced("backup.stale")) == 2


def test_a_recent_verified_backup_is_not_stale():
    backup = backup_row(status=BackupStatus.VERIFIED)
    assert backups_staleness_check() == f"Backup #{backup.pk}, taken within the last 8 days, is verified."
    assert announced("backup.stale") == []


# --- audit


def test_a_changed_event_is_announced_as_a_broken_chain():
    events = [event_record(action="test.event", changes={"n": n}) for n in range(3)]
    _raw("UPDATE audit_auditevent SET object_repr = 'edited' WHERE id = %s", [events[1].id])

    with pytest.raises(Exception, match="Audit chain broken"):
        chain_verify_and_report()

    (event,) = announced("audit.chain_invalid")
    assert event["summary"].startswith(f"Audit chain broken at event #{events[1].id}: content changed")
    assert announced("audit.checkpoint_invalid") == []


def test_a_forged_checkpoint_is_announced_as_an_invalid_checkpoint(settings):
    event_record(action="test.event")
    checkpoint_create()
    settings.AUDIT_SIGNING_KEY = "another signing key, so every signature fails"

    report = chain_check()

    assert not report.ok
    (event,) = announced("audit.checkpoint_invalid")
    assert "has an invalid signature" in event["summary"]


def test_a_chain_that_verifies_announces_nothing():
    event_record(action="test.event")
    assert chain_check().ok
    assert announced("audit.chain_invalid") == announced("audit.checkpoint_invalid") == []


# --- accounts


def _fail_sign_in(client, user, times: int) -> None:
    for _ in range(times):
        client.post("/accounts/login/", {"username": user.username, "password": "wrong password"})


def test_a_locked_out_administrator_is_announced(client, admin_user):
    _fail_sign_in(client, admin_user, 5)

    (event,) = announced("account.locked_out")
    assert event["object_id"] == str(admin_user.pk)
    assert "locked out after too many failed sign-ins from 127.0.0.1" in event["summary"]


def test_a_locked_out_operator_is_not_announced(client, operator_user):
    _fail_sign_in(client, operator_user, 5)

    assert AuditEvent.objects.filter(action="auth.lockout").count() == 1
    assert announced("account.locked_out") == []


def _sign_in_from(user, address: str) -> None:
    request = RequestFactory().get("/", REMOTE_ADDR=address, HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux) Firefox/140.0")
    user_logged_in.send(sender=type(user), request=request, user=user)


def test_an_administrators_sign_in_from_a_new_address_is_announced(admin_user):
    _sign_in_from(admin_user, "192.0.2.10")  # the first sign-in: nothing to compare with
    _sign_in_from(admin_user, "192.0.2.10")
    _sign_in_from(admin_user, "198.51.100.7")
    _sign_in_from(admin_user, "198.51.100.7")

    (event,) = announced("account.new_ip_signin")
    assert event["summary"] == (
        f"{admin_user.username} signed in from 198.51.100.7 (Firefox on Linux), an address not used before"
    )


def test_an_operators_new_address_is_not_announced(operator_user):
    _sign_in_from(operator_user, "192.0.2.10")
    _sign_in_from(operator_user, "198.51.100.7")
    assert announced("account.new_ip_signin") == []


def test_a_token_expiring_within_a_week_is_announced_once(operator_user):
    soon = token_create(owner=operator_user, name="CI pipeline", scopes=["read"], expires_in_days=3).token
    later = token_create(owner=operator_user, name="notebook", scopes=["read"], expires_in_days=30).token
    revoked = token_create(owner=operator_user, name="old laptop", scopes=["read"], expires_in_days=2).token
    token_revoke(token=revoked, by=operator_user)

    assert tokens_announce_expiring() == "Announced 1 expiring token."
    assert tokens_announce_expiring() == "Announced 0 expiring tokens."
    (event,) = announced("token.expiring")
    assert event["object_id"] == str(soon.pk)
    assert event["summary"].startswith(f"Your API token 'CI pipeline' ({soon.prefix}…) expires ")
    assert str(later.pk) != event["object_id"]


# --- compliance


def test_a_completed_report_is_announced_as_ready(compliance_user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    start, end = previous_month()
    report = report_request(
        kind=ReportKind.ACCESS_REVIEW, fmt=ReportFormat.CSV, period_start=start, period_end=end, actor=compliance_user
    )

    run_report(report.pk)

    report.refresh_from_db()
    assert report.status == JobStatus.COMPLETED
    (event,) = announced("report.ready")
    assert event["object_id"] == str(report.pk)
    assert event["summary"] == f"{report} is ready to download"
