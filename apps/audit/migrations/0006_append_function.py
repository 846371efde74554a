"""On PostgreSQL, appending an event is one call of audit_append(): lock, read the head, hash, insert.

One round trip instead of five; the hash is the same length-prefixed text as
in apps/audit/hashing.py (tests compare both for every event they append).
"""

from django.db import migrations

FIELDS = (
    "ts_text",
    "p_actor_username",
    "p_ip",
    "p_user_agent",
    "p_action",
    "p_object_type",
    "p_object_id",
    "p_object_repr",
    "p_changes_text",
    "p_request_id",
    "p_outcome",
    "v_prev",
)
HASH_TEXT = ", ".join(f"length({name}), ':', {name}" for name in FIELDS)

FUNCTION = f"""
CREATE OR REPLACE FUNCTION audit_append(
    p_actor_id bigint, p_actor_username text, p_ip text, p_user_agent text, p_action text,
    p_object_type text, p_object_id text, p_object_repr text, p_changes_text text,
    p_request_id text, p_outcome text
) RETURNS TABLE (event_id bigint, event_timestamp timestamptz, event_prev_hash text, event_hash text) AS $$
DECLARE
    v_prev text;
    v_ts timestamptz;
    ts_text text;
    v_hash text;
    v_id bigint;
BEGIN
    -- The same lock key as apps/audit/services.py: every appender, SQL or Python, queues here.
    PERFORM pg_advisory_xact_lock(22324841718039371);
    SELECT e.hash INTO v_prev FROM audit_auditevent e ORDER BY e.id DESC LIMIT 1;
    IF v_prev IS NULL THEN
        SELECT a.anchor_hash INTO v_prev FROM audit_auditarchive a ORDER BY a.last_id DESC LIMIT 1;
        v_prev := coalesce(v_prev, repeat('0', 64));
    END IF;
    -- Taken after the lock, so timestamps follow the chain order.
    v_ts := date_trunc('microseconds', clock_timestamp());
    ts_text := to_char(v_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"');
    v_hash := encode(sha256(convert_to(concat({HASH_TEXT}), 'UTF8')), 'hex');
    INSERT INTO audit_auditevent (
        timestamp, actor_id, actor_username, ip, user_agent, action, object_type, object_id,
        object_repr, changes_text, request_id, outcome, prev_hash, hash
    ) VALUES (
        v_ts, p_actor_id, p_actor_username, p_ip, p_user_agent, p_action, p_object_type, p_object_id,
        p_object_repr, p_changes_text, p_request_id, p_outcome, v_prev, v_hash
    ) RETURNING id INTO v_id;
    RETURN QUERY SELECT v_id, v_ts, v_prev, v_hash;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION, params=None)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "DROP FUNCTION IF EXISTS audit_append(bigint, text, text, text, text, text, text, text, text, text, text)"
        )


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_changes_stored_once")]

    operations = [migrations.RunPython(install, remove)]
