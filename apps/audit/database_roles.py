"""The privileges of Opsdeck's PostgreSQL roles, so that the audit trail is append-only for all but the owner.

Three roles (README, "Database roles and the append-only audit trail"):

- the **owner** runs migrations, backup verification and restores, and these GRANTs; it owns every table, so
  it could switch the triggers off: it is not used by the portal or the workers;
- the **application** role (portal, workers, beat) reads and writes every table except that it may only
  append to the audit trail (and null ``actor_id`` when a user is deleted);
- the **archive** role, used only by ``audit archive`` through AUDIT_ARCHIVE_DATABASE_URL, may read the trail,
  record archives and call ``audit_archive_delete()`` and ``audit_archive_detach()``, the only ways to remove
  events (rows, or whole monthly partitions).

On PostgreSQL the events table is partitioned by month (migration 0013). A statement aimed at one partition is
checked against that partition's privileges, so every existing partition gets exactly the events table's; a
partition created later gets them from ``audit_partition_create()``.
"""

from __future__ import annotations

from django.db import connection, transaction
from psycopg import sql

from .models import AuditArchive, AuditCheckpoint, AuditEvent


class RoleGrantError(Exception):
    """The grants cannot be applied as asked; the message says why."""


_APP_TABLE_RIGHTS = "SELECT, INSERT, UPDATE, DELETE"
_APP_SEQUENCE_RIGHTS = "USAGE, SELECT, UPDATE"  # UPDATE: setval() when a restore resets the backup sequence


def _statements(
    *, database: str, schema: str, app_role: str, archive_role: str, partitions: list[str]
) -> list[sql.Composed]:
    app, archive, place = sql.Identifier(app_role), sql.Identifier(archive_role), sql.Identifier(schema)
    checkpoint, stored = (sql.Identifier(model._meta.db_table) for model in (AuditCheckpoint, AuditArchive))
    # The events table and each of its partitions.
    event = sql.SQL(", ").join(sql.Identifier(name) for name in [AuditEvent._meta.db_table, *partitions])
    event_seq, archive_seq = (sql.Identifier(f"{model._meta.db_table}_id_seq") for model in (AuditEvent, AuditArchive))
    app_rights, sequence_rights = sql.SQL(_APP_TABLE_RIGHTS), sql.SQL(_APP_SEQUENCE_RIGHTS)
    return [
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}, {}").format(sql.Identifier(database), app, archive),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}, {}").format(place, app, archive),
        sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA {} TO {}").format(app_rights, place, app),
        sql.SQL("GRANT {} ON ALL SEQUENCES IN SCHEMA {} TO {}").format(sequence_rights, place, app),
        # Tables and sequences that later migrations (run by this same owner) create.
        sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT {} ON TABLES TO {}").format(place, app_rights, app),
        sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT {} ON SEQUENCES TO {}").format(
            place, sequence_rights, app
        ),
        # The triggers refuse these anyway; without the rights the attempt fails one step earlier.
        sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON {}, {} FROM {}").format(event, checkpoint, app),
        sql.SQL("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {} FROM {}").format(stored, app),
        sql.SQL("REVOKE ALL ON FUNCTION audit_archive_delete(bigint) FROM PUBLIC, {}").format(app),
        sql.SQL("REVOKE ALL ON FUNCTION audit_archive_detach(text) FROM PUBLIC, {}").format(app),
        # Deleting a user nulls actor_id in their events (Django's SET_NULL); the hash does not cover it.
        sql.SQL("GRANT UPDATE (actor_id) ON {} TO {}").format(event, app),
        sql.SQL("GRANT SELECT ON {}, {}, {} TO {}").format(event, checkpoint, stored, archive),
        sql.SQL("GRANT INSERT ON {}, {} TO {}").format(event, stored, archive),
        sql.SQL("GRANT USAGE ON SEQUENCE {}, {} TO {}").format(event_seq, archive_seq, archive),
        sql.SQL("GRANT EXECUTE ON FUNCTION audit_archive_delete(bigint) TO {}").format(archive),
        sql.SQL("GRANT EXECUTE ON FUNCTION audit_archive_detach(text) TO {}").format(archive),
    ]


def _check_roles(cursor, app_role: str, archive_role: str) -> None:
    if app_role == archive_role:
        raise RoleGrantError("The application and archive roles must be two different roles.")
    cursor.execute("SELECT to_regprocedure('audit_archive_detach(text)') IS NOT NULL")
    if not cursor.fetchone()[0]:
        raise RoleGrantError("The audit tables are not migrated yet: run manage.py migrate (as the owner) first.")
    cursor.execute(
        "SELECT r.rolname, r.rolsuper, r.oid = c.relowner FROM pg_roles r, pg_class c "
        "WHERE r.rolname = ANY(%s) AND c.oid = to_regclass(%s)",
        [[app_role, archive_role], AuditEvent._meta.db_table],
    )
    found = {name: (superuser, owner) for name, superuser, owner in cursor.fetchall()}
    for role in (app_role, archive_role):
        if role not in found:
            raise RoleGrantError(f"There is no role {role!r}: create it first (CREATE ROLE {role} LOGIN PASSWORD ...).")
        superuser, owner = found[role]
        if superuser or owner:
            what = "a superuser" if superuser else "the owner of the audit tables"
            raise RoleGrantError(f"{role} is {what}: no trigger can hold it. Use a role without those powers.")


def database_roles_grant(*, app_role: str, archive_role: str, apply: bool = True) -> list[str]:
    """Grant the application and archive roles what they need, and no more; returns the SQL.

    Runs as the owner of the tables (the role that runs migrations). With ``apply=False`` the statements are
    only returned, for a database administrator to review and run.
    """
    if connection.vendor != "postgresql":
        raise RoleGrantError("Database roles need PostgreSQL: the embedded SQLite database has no roles.")
    with transaction.atomic(), connection.cursor() as cursor:
        _check_roles(cursor, app_role, archive_role)
        cursor.execute("SELECT current_database(), current_schema()")
        database, schema = cursor.fetchone()
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass ORDER BY c.relname",
            [AuditEvent._meta.db_table],
        )
        partitions = [name for (name,) in cursor.fetchall()]
        statements = _statements(
            database=database, schema=schema, app_role=app_role, archive_role=archive_role, partitions=partitions
        )
        texts = [statement.as_string(connection.connection) for statement in statements]
        if apply:
            for text in texts:
                cursor.execute(text, None)
    return texts
