"""Database roles: the application role cannot remove or rewrite audit events; only the archive role archives.

Each test creates its own throwaway LOGIN roles (cluster-wide, so the names are unique per run and the roles
are dropped again whatever happens), grants them what production gives them (``grant_database_roles``) and
connects as them with psycopg, as someone holding the portal's database password would.
"""

import io
import os
import secrets
from contextlib import closing
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditArchive, AuditCheckpoint, AuditEvent
from apps.audit.services import checkpoint_create, event_record
from apps.audit.verification import archive_verify, chain_verify
from tests.core.test_settings_environment import _production_environment
from tests.helpers import clean_environment, manage

pytestmark = pytest.mark.django_db(transaction=True)


def _connect(user: str) -> psycopg.Connection:
    database = connection.settings_dict
    return psycopg.connect(
        host=database["HOST"], port=database["PORT"] or 5432, dbname=database["NAME"], user=user, autocommit=True
    )


def _database_url(user: str) -> str:
    database = connection.settings_dict
    return f"postgres://{user}@{database['HOST']}:{database['PORT'] or 5432}/{database['NAME']}"


@pytest.fixture
def roles():
    """An application and an archive role with production's grants; dropped afterwards even on failure."""
    suffix = f"{os.getpid()}_{secrets.token_hex(3)}"
    app, archive = f"opsdeck_test_app_{suffix}", f"opsdeck_test_archive_{suffix}"
    created = []
    try:
        with connection.cursor() as cursor:
            for role in (app, archive):
                cursor.execute(f"CREATE ROLE {role} LOGIN")
                created.append(role)
        call_command("grant_database_roles", "--app-role", app, "--archive-role", archive, stdout=io.StringIO())
        yield app, archive
    finally:
        with connection.cursor() as cursor:
            for role in created:
                # DROP OWNED revokes its privileges (and default privileges) here, so the role can go.
                cursor.execute(f"DROP OWNED BY {role}")
                cursor.execute(f"DROP ROLE {role}")


@pytest.fixture
def careless_roles(roles):
    """The same roles after a careless ``GRANT ALL`` on every table: only the triggers stand in the way."""
    with connection.cursor() as cursor:
        cursor.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {roles[0]}, {roles[1]}")
    return roles


def _record(count: int) -> list[AuditEvent]:
    return [event_record(action="test.event", changes={"n": n}) for n in range(count)]


ATTACKS = {
    "delete_with_archive_flag": "SET LOCAL opsdeck.audit_archive = 'on'; DELETE FROM audit_auditevent",
    "update": "UPDATE audit_auditevent SET action = 'forged'",
    "update_with_archive_flag": "SET LOCAL opsdeck.audit_archive = 'on'; UPDATE audit_auditevent SET outcome = 'x'",
    "truncate": "TRUNCATE audit_auditevent",
    "truncate_with_archive_flag": "SET LOCAL opsdeck.audit_archive = 'on'; TRUNCATE audit_auditevent",
    "delete_checkpoints": "SET LOCAL opsdeck.audit_archive = 'on'; DELETE FROM audit_auditcheckpoint",
    "truncate_checkpoints": "TRUNCATE audit_auditcheckpoint",
}


def _attack(user: str, statement: str) -> psycopg.Error:
    refused = pytest.raises(psycopg.errors.InsufficientPrivilege)
    with closing(_connect(user)) as attacker, refused as error, attacker.transaction():
        attacker.execute(statement)
    return error.value


def _trail() -> list[tuple]:
    return list(AuditEvent.objects.order_by("id").values_list("id", "action", "outcome", "hash"))


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("who", ["app", "archive"])
def test_application_and_archive_roles_cannot_remove_or_rewrite_events(roles, attack, who):
    _record(3)
    checkpoint_create()
    before = (_trail(), AuditCheckpoint.objects.count())

    error = _attack(roles[0] if who == "app" else roles[1], ATTACKS[attack])

    assert "permission denied" in str(error)
    assert (_trail(), AuditCheckpoint.objects.count()) == before
    assert chain_verify().ok


@pytest.mark.parametrize("attack", ATTACKS)
def test_triggers_refuse_even_a_role_granted_all_on_the_tables(careless_roles, attack):
    _record(3)
    checkpoint_create()
    before = (_trail(), AuditCheckpoint.objects.count())

    error = _attack(careless_roles[0], ATTACKS[attack])

    assert "audit trail is append-only" in str(error)
    assert (_trail(), AuditCheckpoint.objects.count()) == before


def test_application_role_cannot_call_the_archive_delete_function(careless_roles):
    events = _record(3)
    # Even with an anchor row of its own making, which a careless GRANT ALL would allow.
    AuditArchive.objects.create(
        before=timezone.now(), first_id=events[0].id, last_id=events[1].id, event_count=2, archived_total=2,
        previous_anchor_hash="0" * 64, anchor_hash=events[1].hash, file_name="forged", file_sha256="0" * 64,
    )  # fmt: skip

    error = _attack(careless_roles[0], f"SELECT audit_archive_delete({events[1].id})")

    assert "permission denied for function audit_archive_delete" in str(error)
    assert AuditEvent.objects.count() == 3


def test_archive_role_cannot_delete_events_no_archive_anchors(roles):
    events = _record(3)

    error = _attack(roles[1], f"SELECT audit_archive_delete({events[1].id})")

    assert f"no audit archive anchors event #{events[1].id}" in str(error)
    assert AuditEvent.objects.count() == 3


def test_application_role_still_appends_and_deleting_a_user_keeps_their_events(roles, operator_user):
    event = event_record(action="test.by_user", actor=operator_user)
    with closing(_connect(roles[0])) as portal:
        portal.execute("SELECT * FROM audit_append(NULL, '', '', '', 'test.appended', '', '', '', '{}', '', 'success')")
        # What Django's SET_NULL does when the user is deleted.
        portal.execute("UPDATE audit_auditevent SET actor_id = NULL WHERE actor_id = %s", [operator_user.pk])

    event.refresh_from_db()
    assert event.actor_id is None
    assert event.actor_username == "oscar-operator"
    assert AuditEvent.objects.filter(action="test.appended").exists()
    assert chain_verify().ok


def _archive_command(tmp_path, app: str, archive: str | None):
    environment = clean_environment(
        DJANGO_SETTINGS_MODULE="project.settings.local",
        OPSDECK_DATA_DIR=str(settings.DATA_DIR),
        DATABASE_URL=_database_url(app),
        AUDIT_RETENTION_DAYS="0",
        **({"AUDIT_ARCHIVE_DATABASE_URL": _database_url(archive)} if archive else {}),
    )
    before = (timezone.now() + timedelta(microseconds=1)).isoformat()
    output = tmp_path / "audit.jsonl.gz"
    return manage("audit", "archive", "--before", before, "--output", str(output), environment=environment), output


def test_archive_role_archives_through_the_command_and_the_chain_still_verifies(roles, tmp_path):
    old = _record(4)
    checkpoint_create()
    call_command("audit", "verify")

    result, output = _archive_command(tmp_path, *roles)

    assert result.returncode == 0, result.stderr
    assert f"Archived 4 events (#{old[0].id}-#{old[-1].id})" in result.stdout
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["audit.archived"]
    call_command("audit", "verify")  # raises CommandError if the chain or a checkpoint no longer verifies
    assert archive_verify(output).ok


def test_application_role_alone_cannot_archive_and_is_told_why(roles, tmp_path):
    _record(2)
    before = _trail()

    result, output = _archive_command(tmp_path, roles[0], None)

    assert result.returncode != 0
    assert f"The database role {roles[0]} may not remove audit events" in result.stderr
    assert "AUDIT_ARCHIVE_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert not output.exists()
    assert _trail() == before


def test_grants_refuse_a_superuser_as_application_role(roles):
    with pytest.raises(CommandError, match="is a superuser: no trigger can hold it"):
        call_command("grant_database_roles", "--app-role", connection.settings_dict["USER"], "--archive-role", roles[1])


def test_production_reads_the_archive_role_from_a_file_and_passes_the_deploy_check(tmp_path):
    url_file = tmp_path / "archive_url"
    url_file.write_text("postgres://opsdeck_archive:s3cret@127.0.0.1:5432/opsdeck\n")
    environment = _production_environment(tmp_path, AUDIT_ARCHIVE_DATABASE_URL_FILE=str(url_file))

    shown = manage("shell", "-v", "0", "-c", SHOW_ARCHIVE_DATABASE, environment=environment)
    checked = manage("check", "--deploy", "--fail-level", "DEBUG", environment=environment)

    assert shown.stdout.split() == ["audit_archive", "opsdeck_archive", "opsdeck"], shown.stderr
    assert checked.returncode == 0, checked.stderr


SHOW_ARCHIVE_DATABASE = (
    "from django.conf import settings as s; d = s.DATABASES[s.AUDIT_ARCHIVE_DATABASE]; "
    "print(s.AUDIT_ARCHIVE_DATABASE, d['USER'], d['NAME'])"
)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:////tmp/archive.sqlite3", "AUDIT_ARCHIVE_DATABASE_URL needs PostgreSQL"),
        ("mysql://archiver@db/opsdeck", "AUDIT_ARCHIVE_DATABASE_URL must be a PostgreSQL"),
        ("postgres://archiver@127.0.0.1:5432/elsewhere", "AUDIT_ARCHIVE_DATABASE_URL must name the same host"),
    ],
)
def test_bad_archive_database_url_stops_the_portal_naming_it(tmp_path, url, message):
    result = manage("check", environment=_production_environment(tmp_path, AUDIT_ARCHIVE_DATABASE_URL=url))

    assert result.returncode != 0
    assert message in result.stderr
