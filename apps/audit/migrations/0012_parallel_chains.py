"""Appends spread over parallel chains: each event joins one of AUDIT_CHAINS chains, each chain with its own lock.

``audit_append`` used to take one lock for the whole trail and hold it until the caller's transaction ended, so
appenders queued behind each other's commits (fewer events per second with four writers than with one). Now it
takes chain 0 if its lock is free, else the first free chain from the one its backend pid names
(``pg_try_advisory_xact_lock`` per chain; only when every chain is taken does it wait, for that pid's chain), and every later event of the same transaction
joins the same chain (``opsdeck.audit_chain``, a transaction-local setting). Each chain links its events exactly
as the single chain did; chain 0 starts at the old genesis and carries every event recorded before this
migration, so existing hashes and checkpoints stay valid. Checkpoints sign the head of every chain
(``heads``); archives anchor every chain they cut (``anchors``).
"""

import importlib

from django.db import migrations, models

LOCK_KEY = 22324841718039371  # chain 0's lock: the key every earlier appender took
# The hashed text, as in audit_append since migration 0006: the same variables, the same order.
APPEND_0006 = importlib.import_module("apps.audit.migrations.0006_append_function")
FIELDS, HASH_TEXT = APPEND_0006.FIELDS, APPEND_0006.HASH_TEXT
OLD_SIGNATURE = "audit_append(bigint, text, text, text, text, text, text, text, text, text, text)"
NEW_SIGNATURE = "audit_append(bigint, text, text, text, text, text, text, text, text, text, text, integer)"
BATCH_SIGNATURE = (
    "audit_append_batch(bigint[], text[], text[], text[], text[], text[], text[], text[], text[], text[], text[], "
    "integer)"
)

# Chain 0 starts at the genesis of the single chain; chain k > 0 at SHA-256 of "opsdeck-audit-chain-k"
# (apps/audit/hashing.py: chain_genesis), so no two chains share a first link.
CHAIN_GENESIS = """
CREATE OR REPLACE FUNCTION audit_chain_genesis(p_chain integer) RETURNS text AS $$
    SELECT CASE WHEN p_chain = 0 THEN repeat('0', 64)
                ELSE encode(sha256(convert_to('opsdeck-audit-chain-' || p_chain, 'UTF8')), 'hex') END
$$ LANGUAGE sql IMMUTABLE;
"""

# Takes this transaction's chain: the one it appended to before, else chain 0 when free (a lone writer always
# appends to it), else the first free chain from the one this backend's pid names on, so that concurrent writers
# spread out instead of all trying the same chains in turn; waits only when every chain is taken.
CHAIN_TAKE = f"""
CREATE OR REPLACE FUNCTION audit_chain_take(p_chains integer) RETURNS integer AS $$
DECLARE
    v_chain integer := nullif(current_setting('opsdeck.audit_chain', true), '')::integer;
    v_start integer := pg_backend_pid() % p_chains;
    v_candidate integer;
BEGIN
    IF v_chain IS NOT NULL THEN
        RETURN v_chain;
    END IF;
    FOR v_try IN -1 .. p_chains - 1 LOOP
        v_candidate := CASE WHEN v_try < 0 THEN 0 ELSE (v_start + v_try) % p_chains END;
        IF pg_try_advisory_xact_lock({LOCK_KEY} + v_candidate) THEN
            v_chain := v_candidate;
            EXIT;
        END IF;
    END LOOP;
    IF v_chain IS NULL THEN
        v_chain := v_start;
        PERFORM pg_advisory_xact_lock({LOCK_KEY} + v_chain);
    END IF;
    -- The rest of this transaction's events follow on the same chain, consecutively.
    PERFORM set_config('opsdeck.audit_chain', v_chain::text, true);
    RETURN v_chain;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""

# The hash a chain's next event links to: its newest event's, else where the newest archive cut it, else its genesis.
CHAIN_HEAD = """
CREATE OR REPLACE FUNCTION audit_chain_head(p_chain integer) RETURNS text AS $$
DECLARE
    v_head text;
BEGIN
    SELECT e.hash INTO v_head FROM audit_auditevent e WHERE e.chain = p_chain ORDER BY e.id DESC LIMIT 1;
    IF v_head IS NULL THEN
        SELECT a.anchors ->> p_chain::text INTO v_head FROM audit_auditarchive a ORDER BY a.last_id DESC LIMIT 1;
    END IF;
    RETURN coalesce(v_head, audit_chain_genesis(p_chain));
END;
$$ LANGUAGE plpgsql STABLE;
"""

_COLUMNS = (
    "timestamp, actor_id, actor_username, ip, user_agent, action, object_type, object_id, "
    "object_repr, changes_text, request_id, outcome, prev_hash, hash, chain"
)
_TIMESTAMP = """
    -- Taken after the lock, so timestamps follow the order of each chain.
    v_ts := date_trunc('microseconds', clock_timestamp());
    ts_text := to_char(v_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"');
"""

FUNCTION = f"""
CREATE OR REPLACE FUNCTION audit_append(
    p_actor_id bigint, p_actor_username text, p_ip text, p_user_agent text, p_action text,
    p_object_type text, p_object_id text, p_object_repr text, p_changes_text text,
    p_request_id text, p_outcome text, p_chains integer DEFAULT 64
) RETURNS TABLE (
    event_id bigint, event_timestamp timestamptz, event_prev_hash text, event_hash text, event_chain integer
) AS $$
DECLARE
    v_chain integer := audit_chain_take(p_chains);
    v_prev text := audit_chain_head(v_chain);
    v_ts timestamptz;
    ts_text text;
    v_hash text;
    v_id bigint;
BEGIN
    {_TIMESTAMP}
    v_hash := encode(sha256(convert_to(concat({HASH_TEXT}), 'UTF8')), 'hex');
    INSERT INTO audit_auditevent ({_COLUMNS}) VALUES (
        v_ts, p_actor_id, p_actor_username, p_ip, p_user_agent, p_action, p_object_type, p_object_id,
        p_object_repr, p_changes_text, p_request_id, p_outcome, v_prev, v_hash, v_chain
    ) RETURNING id INTO v_id;
    RETURN QUERY SELECT v_id, v_ts, v_prev, v_hash, v_chain;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""

# Many events of one transaction in one call: one lock, one head read, one INSERT; hashed one after the other.
BATCH_HASH_TEXT = ", ".join(
    f"length({name}), ':', {name}" if name in ("ts_text", "v_prev") else f"length({name}[i]), ':', {name}[i]"
    for name in FIELDS
)
BATCH_FUNCTION = f"""
CREATE OR REPLACE FUNCTION audit_append_batch(
    p_actor_id bigint[], p_actor_username text[], p_ip text[], p_user_agent text[], p_action text[],
    p_object_type text[], p_object_id text[], p_object_repr text[], p_changes_text text[],
    p_request_id text[], p_outcome text[], p_chains integer DEFAULT 64
) RETURNS TABLE (
    event_id bigint, event_timestamp timestamptz, event_prev_hash text, event_hash text, event_chain integer
) AS $$
DECLARE
    v_chain integer := audit_chain_take(p_chains);
    v_prev text := audit_chain_head(v_chain);
    v_prevs text[] := '{{}}';
    v_hashes text[] := '{{}}';
    v_ts timestamptz;
    ts_text text;
BEGIN
    {_TIMESTAMP}
    FOR i IN 1 .. coalesce(array_length(p_action, 1), 0) LOOP
        v_prevs[i] := v_prev;
        v_prev := encode(sha256(convert_to(concat({BATCH_HASH_TEXT}), 'UTF8')), 'hex');
        v_hashes[i] := v_prev;
    END LOOP;
    -- In the arrays' order, so ids follow the chain.
    RETURN QUERY WITH inserted AS (
        INSERT INTO audit_auditevent ({_COLUMNS})
        SELECT v_ts, e.actor_id, e.actor_username, e.ip, e.user_agent, e.action, e.object_type, e.object_id,
               e.object_repr, e.changes_text, e.request_id, e.outcome, e.prev_hash, e.hash, v_chain
        FROM unnest(p_actor_id, p_actor_username, p_ip, p_user_agent, p_action, p_object_type, p_object_id,
                    p_object_repr, p_changes_text, p_request_id, p_outcome, v_prevs, v_hashes)
             WITH ORDINALITY AS e(actor_id, actor_username, ip, user_agent, action, object_type, object_id,
                                  object_repr, changes_text, request_id, outcome, prev_hash, hash, position)
        ORDER BY e.position
        RETURNING id, timestamp, prev_hash, hash, chain
    ) SELECT i.id, i.timestamp, i.prev_hash::text, i.hash::text, i.chain::integer FROM inserted i ORDER BY i.id;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {OLD_SIGNATURE}")
    for function in (CHAIN_GENESIS, CHAIN_TAKE, CHAIN_HEAD, FUNCTION, BATCH_FUNCTION):
        schema_editor.execute(function, params=None)
    schema_editor.execute(
        "UPDATE audit_auditarchive SET anchors = jsonb_build_object('0', anchor_hash) WHERE anchors = '{}'::jsonb"
    )


def remove(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {NEW_SIGNATURE}")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {BATCH_SIGNATURE}")
    for function in ("audit_chain_head", "audit_chain_take", "audit_chain_genesis"):
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {function}(integer)")
    APPEND_0006.install(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("audit", "0011_audit_sink")]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="chain",
            field=models.PositiveSmallIntegerField(
                db_default=0, editable=False, help_text="Which of the parallel chains this event links into."
            ),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["chain", "id"], name="audit_chain_id_idx"),
        ),
        migrations.AddField(
            model_name="auditarchive",
            name="anchors",
            field=models.JSONField(
                default=dict, help_text="Per chain, the hash of its last archived event: where it continues."
            ),
        ),
        migrations.AddField(
            model_name="auditcheckpoint",
            name="heads",
            field=models.JSONField(
                default=dict, blank=True, help_text="Per chain, the id and hash of its newest event when signed."
            ),
        ),
        migrations.RunPython(install, remove),
    ]
