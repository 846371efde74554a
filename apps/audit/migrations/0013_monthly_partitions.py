"""On PostgreSQL, the audit table is partitioned by month, so archiving a month detaches a partition.

``audit_auditevent`` becomes ``PARTITION BY RANGE (timestamp)`` with one partition per UTC month
(``audit_auditevent_pYYYYMM``) and a DEFAULT partition, so an insert never fails for want of a partition. Keys and
unique constraints must include the partition key: the primary key is (id, timestamp) and the hash is unique per
(hash, timestamp). PostgreSQL 15 has no identity columns on partitioned tables, so ``id`` takes its default from a
sequence owned by the column (named as the identity's was), set past the highest id.

Existing rows are copied unchanged (ids, hashes, chains), so the chains and the checkpoints signed before still
verify. The guards of migration 0008 hold on the parent and on every partition: UPDATE is refused row by row
(the trigger is cloned to each partition), DELETE and TRUNCATE by a statement trigger on each table, because a
statement aimed at one partition fires that partition's statement triggers, not the parent's.

Functions owned by the table owner with its search_path pinned:

- ``audit_partition_create(month)`` creates a month's partition if missing, with the guard and the parent's
  privileges (not those ALTER DEFAULT PRIVILEGES would give the application role); anyone may call it;
- ``audit_archive_detach(partition)`` detaches and drops one monthly partition, only when an archive row anchors
  its newest event; EXECUTE is for the archive role alone (``manage.py grant_database_roles``);
- ``audit_privileges_copy(from, to)`` gives a table exactly another's privileges, and
  ``audit_partition_index_names(partition)`` names a partition's indexes after the parent's (both used above).

``audit_chain_head`` (what both appends link to) reads a chain's head in this month's partition first (one index
probe), and only when the chain has no event there in the whole table (one probe per partition: 84 for seven
years of months).

SQLite (the embedded default) keeps its one table: only Django's state changes there.
"""

import importlib

from django.db import migrations, models

CHAINS = importlib.import_module("apps.audit.migrations.0012_parallel_chains")
GUARDS = importlib.import_module("apps.audit.migrations.0008_archive_role_guard")

TABLE = "audit_auditevent"
OLD_TABLE = "audit_auditevent_unpartitioned"
DEFAULT_PARTITION = "audit_auditevent_default"
SEQUENCE = "audit_auditevent_id_seq"
LOCK_KEY = CHAINS.LOCK_KEY
PARTITION_LOCK_KEY = LOCK_KEY - 2  # -1 is the checkpoints' lock (services.CHECKPOINT_LOCK_KEY)
MONTHS_AHEAD = 2

# The row guard of 0008 compared TG_TABLE_NAME with the parent's name; cloned to a partition, it sees the
# partition's name, and would refuse the one UPDATE it lets through (nulling actor_id when a user is deleted).
UPDATE_GUARD = """
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger AS $$
DECLARE
    unchanged record;
BEGIN
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME <> 'audit_auditcheckpoint' THEN
        IF NEW.actor_id IS NULL AND (TG_TABLE_NAME = 'audit_auditevent' OR EXISTS (
                SELECT 1 FROM pg_inherits i WHERE i.inhrelid = TG_RELID AND i.inhparent = 'audit_auditevent'::regclass
        )) THEN
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

# Grants and revokes only: the caller must own ``p_to`` (the SECURITY DEFINER functions below do).
PRIVILEGES_COPY = """
CREATE OR REPLACE FUNCTION audit_privileges_copy(p_from regclass, p_to regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = {schema}, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) a
             WHERE c.oid = p_to AND a.grantee <> c.relowner LOOP
        EXECUTE format('REVOKE ALL ON %s FROM %s', p_to,
                       CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r.grantee)) END);
    END LOOP;
    FOR r IN SELECT a.grantee, a.privilege_type FROM pg_class c, aclexplode(c.relacl) a
             WHERE c.oid = p_from AND a.grantee <> c.relowner LOOP
        EXECUTE format('GRANT %s ON %s TO %s', r.privilege_type, p_to,
                       CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r.grantee)) END);
    END LOOP;
    FOR r IN SELECT t.attname, a.grantee, a.privilege_type FROM pg_attribute t, aclexplode(t.attacl) a
             WHERE t.attrelid = p_from AND t.attnum > 0 AND NOT t.attisdropped LOOP
        EXECUTE format('GRANT %s (%I) ON %s TO %s', r.privilege_type, r.attname, p_to,
                       CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r.grantee)) END);
    END LOOP;
END;
$$;
REVOKE ALL ON FUNCTION audit_privileges_copy(regclass, regclass) FROM PUBLIC;
"""

# A partition's indexes are named after the parent's (audit_auditevent_p202612_audit_object_id_recent), so plans
# name the index they use; PostgreSQL would call it audit_auditevent_p202612_object_id_id_idx.
INDEX_NAMES = """
CREATE OR REPLACE FUNCTION audit_partition_index_names(p_partition regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = {schema}, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT child.relname AS child, (SELECT relname FROM pg_class WHERE oid = p_partition) || '_'
                    || parent.relname AS wanted
             FROM pg_index x JOIN pg_class child ON child.oid = x.indexrelid
             JOIN pg_inherits i ON i.inhrelid = x.indexrelid JOIN pg_class parent ON parent.oid = i.inhparent
             WHERE x.indrelid = p_partition LOOP
        IF r.child <> r.wanted THEN
            EXECUTE format('ALTER INDEX %I RENAME TO %I', r.child, r.wanted);
        END IF;
    END LOOP;
END;
$$;
REVOKE ALL ON FUNCTION audit_partition_index_names(regclass) FROM PUBLIC;
"""

NO_REMOVAL_TRIGGER = (
    "CREATE TRIGGER {name}_no_removal BEFORE DELETE OR TRUNCATE ON {name} "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_no_removal()"
)

# Months are UTC months. Rows of the month still in the default partition would make CREATE ... PARTITION OF fail
# with PostgreSQL's own words; this names them instead (SQLSTATE 55000, which partitions.py reports).
PARTITION_CREATE = f"""
CREATE OR REPLACE FUNCTION audit_partition_create(p_month date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = {{schema}}, pg_temp
AS $$
DECLARE
    v_month date := make_date(extract(year FROM p_month)::integer, extract(month FROM p_month)::integer, 1);
    v_name text := 'audit_auditevent_p' || to_char(p_month, 'YYYYMM');
    v_strays bigint;
BEGIN
    PERFORM pg_advisory_xact_lock({PARTITION_LOCK_KEY});
    IF EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = 'audit_auditevent'::regclass AND c.relname = v_name) THEN
        RETURN false;
    END IF;
    SELECT count(*) INTO v_strays FROM {DEFAULT_PARTITION}
        WHERE timestamp >= v_month::timestamp AT TIME ZONE 'UTC'
          AND timestamp < (v_month + interval '1 month')::timestamp AT TIME ZONE 'UTC';
    IF v_strays > 0 THEN
        RAISE EXCEPTION 'the default partition holds % audit events of %: partition % not created',
            v_strays, to_char(v_month, 'YYYY-MM'), v_name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'They stay in the default partition, which archiving empties by deleting rows.';
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF audit_auditevent FOR VALUES FROM (%L) TO (%L)', v_name,
                   to_char(v_month, 'YYYY-MM-DD') || ' 00:00:00+00',
                   to_char(v_month + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00');
    EXECUTE format('CREATE TRIGGER %I BEFORE DELETE OR TRUNCATE ON %I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION audit_no_removal()', v_name || '_no_removal', v_name);
    PERFORM audit_privileges_copy('audit_auditevent'::regclass, v_name::regclass);
    PERFORM audit_partition_index_names(v_name::regclass);
    RETURN true;
END;
$$;
"""

# Checked before anything is detached: the partition's newest event is anchored by an archive row whose anchor
# event is still there with the recorded hash. An empty partition needs an archive made after its month.
ARCHIVE_DETACH = f"""
CREATE OR REPLACE FUNCTION audit_archive_detach(p_partition text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = {{schema}}, pg_temp
AS $$
DECLARE
    v_partition regclass;
    v_bound text;
    v_newest bigint;
    v_count bigint;
BEGIN
    PERFORM pg_advisory_xact_lock({LOCK_KEY});
    SELECT c.oid, pg_get_expr(c.relpartbound, c.oid) INTO v_partition, v_bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'audit_auditevent'::regclass AND c.relname = p_partition;
    IF v_partition IS NULL THEN
        RAISE EXCEPTION '% is not a partition of the audit trail: nothing detached', p_partition
            USING ERRCODE = 'undefined_table';
    END IF;
    IF v_bound = 'DEFAULT' THEN
        RAISE EXCEPTION 'the default partition of the audit trail is never detached'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('SELECT max(id), count(*) FROM %s', v_partition) INTO v_newest, v_count;
    IF v_newest IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM audit_auditarchive a JOIN audit_auditevent e ON e.id = a.last_id AND e.hash = a.anchor_hash
        WHERE a.last_id >= v_newest
    ) THEN
        RAISE EXCEPTION 'no audit archive anchors event #% (the newest in %): nothing detached', v_newest, p_partition
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF v_newest IS NULL AND NOT EXISTS (
        SELECT 1 FROM audit_auditarchive a
        WHERE a.before >= (regexp_match(v_bound, 'TO \\(''([^'']+)''\\)'))[1]::timestamptz
    ) THEN
        RAISE EXCEPTION 'no audit archive covers the month of % yet: nothing detached', p_partition
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('ALTER TABLE audit_auditevent DETACH PARTITION %s', v_partition);
    EXECUTE format('DROP TABLE %s', v_partition);
    RETURN v_count;
END;
$$;
REVOKE ALL ON FUNCTION audit_archive_detach(text) FROM PUBLIC;
"""

# Within a chain, timestamps follow ids (taken after the chain's lock), so a head found from this month on is the
# chain's head. now() is the transaction's start: at worst a month earlier than needed. PL/pgSQL, not SQL: its
# cached plans are replanned when a partition is detached or dropped (archiving does that, then appends).
CHAIN_HEAD = """
CREATE OR REPLACE FUNCTION audit_chain_head(p_chain integer) RETURNS text AS $$
DECLARE
    v_head text;
BEGIN
    SELECT e.hash INTO v_head FROM audit_auditevent e
    WHERE e.chain = p_chain AND e.timestamp >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    ORDER BY e.id DESC LIMIT 1;
    IF v_head IS NULL THEN
        SELECT e.hash INTO v_head FROM audit_auditevent e WHERE e.chain = p_chain ORDER BY e.id DESC LIMIT 1;
    END IF;
    IF v_head IS NULL THEN
        SELECT a.anchors ->> p_chain::text INTO v_head FROM audit_auditarchive a ORDER BY a.last_id DESC LIMIT 1;
    END IF;
    RETURN coalesce(v_head, audit_chain_genesis(p_chain));
END;
$$ LANGUAGE plpgsql STABLE;
"""


def _schema(schema_editor) -> str:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        return schema_editor.quote_name(cursor.fetchone()[0])


def _fetch(schema_editor, query: str, params=()) -> list[tuple]:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def _definitions(schema_editor, table: str) -> tuple[list[str], list[str]]:
    """The table's plain indexes (CREATE INDEX texts) and foreign keys (ALTER TABLE texts), to build again."""
    indexes = _fetch(
        schema_editor,
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = %s::regclass AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY i.indexrelid",
        [table],
    )
    keys = _fetch(
        schema_editor,
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
        [table],
    )
    # A partitioned table's index text says ON ONLY; built on a table, it must cover its partitions (or rows).
    return (
        [text.replace(" ON ONLY ", " ON ") for (text,) in indexes],
        [f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}' for name, definition in keys],
    )


def _columns(schema_editor, table: str) -> str:
    rows = _fetch(
        schema_editor,
        "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum",
        [table],
    )
    return ", ".join(name for (name,) in rows)


def _rebuild(schema_editor, indexes: list[str], keys: list[str]) -> None:
    for statement in [*indexes, *keys]:
        schema_editor.execute(statement, params=None)


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema = _schema(schema_editor)
    indexes, keys = _definitions(schema_editor, TABLE)
    execute = schema_editor.execute
    execute(f"ALTER TABLE {TABLE} RENAME TO {OLD_TABLE}")
    execute(
        f"CREATE TABLE {TABLE} (LIKE {OLD_TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (timestamp)"
    )
    execute("CREATE SEQUENCE audit_auditevent_id_partitioned_seq OWNED BY audit_auditevent.id")
    execute(f"ALTER TABLE {TABLE} ALTER COLUMN id SET DEFAULT nextval('audit_auditevent_id_partitioned_seq')")
    for function in (UPDATE_GUARD, PRIVILEGES_COPY, INDEX_NAMES, PARTITION_CREATE, ARCHIVE_DETACH, CHAIN_HEAD):
        execute(function.format(schema=schema) if "{schema}" in function else function, params=None)
    execute(f"SELECT audit_privileges_copy('{OLD_TABLE}'::regclass, '{TABLE}'::regclass)")
    execute(
        f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE ON {TABLE} FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
    )
    execute(NO_REMOVAL_TRIGGER.format(name=TABLE))
    execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT")
    execute(NO_REMOVAL_TRIGGER.format(name=DEFAULT_PARTITION))
    execute(f"SELECT audit_privileges_copy('{TABLE}'::regclass, '{DEFAULT_PARTITION}'::regclass)")
    # From the oldest event's month (this month if there is none) to MONTHS_AHEAD months ahead.
    execute(
        "SELECT count(audit_partition_create(month::date)) FROM generate_series("
        f"  date_trunc('month', coalesce((SELECT min(timestamp) FROM {OLD_TABLE}), now()) AT TIME ZONE 'UTC'),"
        f"  date_trunc('month', now() AT TIME ZONE 'UTC') + interval '{MONTHS_AHEAD} months',"
        "  interval '1 month') AS month"
    )
    columns = _columns(schema_editor, OLD_TABLE)
    execute(f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM {OLD_TABLE}")  # noqa: S608 - catalog names
    execute(
        "SELECT setval('audit_auditevent_id_partitioned_seq', "
        f"coalesce((SELECT max(id) FROM {OLD_TABLE}), 0) + 1, false)"  # noqa: S608
    )
    execute(f"DROP TABLE {OLD_TABLE}")
    execute(f"ALTER SEQUENCE audit_auditevent_id_partitioned_seq RENAME TO {SEQUENCE}")
    execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id, timestamp)")
    execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT audit_hash_unique UNIQUE (hash, timestamp)")
    _rebuild(schema_editor, indexes, keys)
    execute(
        f"SELECT audit_partition_index_names(inhrelid::regclass) FROM pg_inherits WHERE inhparent = '{TABLE}'::regclass"
    )


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    indexes, keys = _definitions(schema_editor, TABLE)
    execute = schema_editor.execute
    execute(f"CREATE TABLE {OLD_TABLE} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    execute(f"ALTER TABLE {OLD_TABLE} ALTER COLUMN id DROP DEFAULT")
    execute(f"SELECT audit_privileges_copy('{TABLE}'::regclass, '{OLD_TABLE}'::regclass)")
    columns = _columns(schema_editor, TABLE)
    execute(f"INSERT INTO {OLD_TABLE} ({columns}) SELECT {columns} FROM {TABLE}")  # noqa: S608 - catalog names
    execute(f"DROP TABLE {TABLE}")  # its partitions and its sequence with it
    execute(f"ALTER TABLE {OLD_TABLE} RENAME TO {TABLE}")
    execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY (id)")
    execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT audit_hash_unique UNIQUE (hash)")
    execute(f"ALTER TABLE {TABLE} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY")
    execute(f"SELECT setval('{SEQUENCE}', coalesce((SELECT max(id) FROM {TABLE}), 0) + 1, false)")  # noqa: S608
    _rebuild(schema_editor, indexes, keys)
    for function in (
        "audit_archive_detach(text)",
        "audit_partition_create(date)",
        "audit_privileges_copy(regclass, regclass)",
        "audit_partition_index_names(regclass)",
    ):
        execute(f"DROP FUNCTION IF EXISTS {function}")
    GUARDS.install(apps, schema_editor)  # the triggers, and 0008's row guard
    CHAINS.install(apps, schema_editor)  # 0012's functions, the whole-table head read among them


OLD_UNIQUE = models.UniqueConstraint(fields=["hash"], name="audit_hash_unique")
NEW_UNIQUE = models.UniqueConstraint(fields=["hash", "timestamp"], name="audit_hash_unique")


class Migration(migrations.Migration):
    dependencies = [("audit", "0012_parallel_chains")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(model_name="auditevent", name="audit_hash_unique"),
                migrations.AddConstraint(model_name="auditevent", constraint=NEW_UNIQUE),
            ],
            database_operations=[migrations.RunPython(partition, unpartition)],
        ),
    ]
