"""On PostgreSQL, refuse UPDATE and DELETE on the audit tables.

Two exceptions: deleting a user nulls ``actor_id`` (nothing the hash covers),
and ``archive_create`` may delete events after ``SET LOCAL opsdeck.audit_archive = 'on'``.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger AS $$
DECLARE
    unchanged audit_auditevent%ROWTYPE;
BEGIN
    IF TG_TABLE_NAME = 'audit_auditevent' THEN
        IF TG_OP = 'DELETE' AND current_setting('opsdeck.audit_archive', true) = 'on' THEN
            RETURN OLD;
        END IF;
        IF TG_OP = 'UPDATE' AND NEW.actor_id IS NULL THEN
            unchanged := NEW;
            unchanged.actor_id := OLD.actor_id;
            IF unchanged IS NOT DISTINCT FROM OLD THEN
                RETURN NEW;
            END IF;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""
TABLES = ("audit_auditevent", "audit_auditcheckpoint")


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)  # the body contains % placeholders of its own
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
        )


def remove(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS audit_append_only()")


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(install, remove)]
