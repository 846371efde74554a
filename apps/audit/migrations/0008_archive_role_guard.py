"""On PostgreSQL, only the archive path may remove audit events, and nobody may TRUNCATE the audit tables.

Migration 0002 let any session delete events after ``SET LOCAL opsdeck.audit_archive = 'on'``, and did not
guard TRUNCATE at all. Now:

- UPDATE stays refused row by row, except nulling ``actor_id`` when a user is deleted (not hashed);
- DELETE and TRUNCATE are refused by a statement-level trigger (one check per statement, so archiving a
  million events costs one check, not a million). The single exception is a DELETE of events made by the
  owner of the table (or a superuser) with ``opsdeck.audit_archive`` on: ``audit_archive_delete()`` does that, a
  ``SECURITY DEFINER`` function owned by the table owner whose EXECUTE right is revoked from PUBLIC and granted
  to the archive role alone (``manage.py grant_database_roles``). A role that merely sets the flag is not the
  owner, so the flag alone no longer opens anything;
- TRUNCATE is let through for superusers only: they can switch any trigger off anyway (what they do is
  detected by ``audit verify``, not prevented), and Django's test flush runs as one.
"""

import importlib

from django.db import migrations

PREVIOUS = importlib.import_module("apps.audit.migrations.0002_append_only_trigger")
TABLES = ("audit_auditevent", "audit_auditcheckpoint")

UPDATE_GUARD = """
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger AS $$
DECLARE
    unchanged audit_auditevent%ROWTYPE;
BEGIN
    IF TG_TABLE_NAME = 'audit_auditevent' AND TG_OP = 'UPDATE' AND NEW.actor_id IS NULL THEN
        unchanged := NEW;
        unchanged.actor_id := OLD.actor_id;
        IF unchanged IS NOT DISTINCT FROM OLD THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

REMOVAL_GUARD = """
CREATE OR REPLACE FUNCTION audit_no_removal() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_auditevent'
            AND current_setting('opsdeck.audit_archive', true) = 'on'
            AND (SELECT r.rolsuper OR r.oid = (SELECT c.relowner FROM pg_class c WHERE c.oid = TG_RELID)
                 FROM pg_roles r WHERE r.rolname = current_user) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'TRUNCATE' AND (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit trail is append-only: % on % refused (role %)', TG_OP, TG_TABLE_NAME, current_user
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

# search_path is pinned (temporary schema last) so that a caller cannot slip its own audit_auditevent in front.
ARCHIVE_DELETE = """
CREATE OR REPLACE FUNCTION audit_archive_delete(p_last_id bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = {schema}, pg_temp
SET opsdeck.audit_archive = 'on'
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    -- The appenders' lock: nobody links to an event while it is being removed.
    PERFORM pg_advisory_xact_lock(22324841718039371);
    -- Only a prefix that an archive row already anchors: the remaining chain must stay verifiable.
    IF NOT EXISTS (
        SELECT 1 FROM audit_auditarchive a JOIN audit_auditevent e ON e.id = a.last_id AND e.hash = a.anchor_hash
        WHERE a.last_id = p_last_id
    ) THEN
        RAISE EXCEPTION 'no audit archive anchors event #%: nothing deleted', p_last_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    DELETE FROM audit_auditevent WHERE id <= p_last_id;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END;
$$;
REVOKE ALL ON FUNCTION audit_archive_delete(bigint) FROM PUBLIC;
"""


def _drop_triggers(schema_editor) -> None:
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_removal ON {table}")


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = schema_editor.quote_name(cursor.fetchone()[0])
    _drop_triggers(schema_editor)
    # The bodies contain % placeholders of their own.
    schema_editor.execute(UPDATE_GUARD, params=None)
    schema_editor.execute(REMOVAL_GUARD, params=None)
    schema_editor.execute(ARCHIVE_DELETE.format(schema=schema), params=None)
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
        )
        schema_editor.execute(
            f"CREATE TRIGGER {table}_no_removal BEFORE DELETE OR TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_no_removal()"
        )


def remove(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    _drop_triggers(schema_editor)
    schema_editor.execute("DROP FUNCTION IF EXISTS audit_archive_delete(bigint)")
    schema_editor.execute("DROP FUNCTION IF EXISTS audit_no_removal()")
    PREVIOUS.install(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("audit", "0007_leaner_indexes")]

    operations = [migrations.RunPython(install, remove)]
