"""Read queries of the audit trail, shared by verification, API, admin and reports."""

from __future__ import annotations

from datetime import datetime

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Max, Q, QuerySet

from .models import AuditArchive, AuditEvent


def chain_anchor(*, using: str = DEFAULT_DB_ALIAS) -> AuditArchive | None:
    """The newest archive: the remaining chain continues from its anchor hash."""
    return AuditArchive.objects.using(using).order_by("-last_id").first()


def events_between(*, since: datetime | None = None, until: datetime | None = None) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all()
    if since is not None:
        events = events.filter(timestamp__gte=since)
    if until is not None:
        events = events.filter(timestamp__lt=until)
    return events


def chain_heads(*, using: str = DEFAULT_DB_ALIAS) -> dict[str, list]:
    """Per chain (its number as text, as JSON keys are), ``[id, hash]`` of its newest event: one index probe each."""
    events = AuditEvent.objects.using(using)
    highest = events.aggregate(highest=Max("chain"))["highest"]
    heads = {}
    for chain in range(highest + 1 if highest is not None else 0):
        head = events.filter(chain=chain).order_by("-id").values_list("id", "hash").first()
        if head is not None:
            heads[str(chain)] = list(head)
    return heads


def events_up_to_heads(heads: dict[str, list], *, using: str = DEFAULT_DB_ALIAS) -> QuerySet[AuditEvent]:
    """The events of each chain up to its head in ``heads``: fixed once those heads were read, whatever commits
    later (a chain's events commit in id order)."""
    condition = Q(pk__in=[])
    for chain, (head_id, _) in heads.items():
        condition |= Q(chain=int(chain), id__lte=head_id)
    return AuditEvent.objects.using(using).filter(condition)


# Chain k's append lock is CHAIN_LOCK_KEY + k; any chain up to AUDIT_CHAINS' largest allowed value counts, since a
# chain above the current setting may still be in use by a process started with a larger one.
MAX_CHAINS = 1024
_SEQUENCE_SQL = (
    "SELECT q.name, s.seqcache FROM pg_get_serial_sequence(%s, 'id') AS q(name) "
    "LEFT JOIN pg_sequence s ON s.seqrelid = q.name::regclass"
)
# Held chain locks (advisory, one bigint key: objsubid 1, key = classid << 32 | objid) in this database, each with
# its chain's newest event id visible now (one probe of the chain's (chain, id) index).
_HELD_CHAINS_SQL = """
SELECT held.chain, (SELECT max(e.id) FROM {table} e WHERE e.chain = held.chain)
FROM (
    SELECT DISTINCT ((l.classid::bigint << 32) | l.objid::bigint) - %(first_key)s AS chain
    FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
      AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
      AND ((l.classid::bigint << 32) | l.objid::bigint) >= %(first_key)s
      AND ((l.classid::bigint << 32) | l.objid::bigint) < %(first_key)s + %(chains)s
) held
"""


class UnsettledSequenceError(Exception):
    """The events' id sequence is set up so that settled ids cannot be told; the message says what to change."""


def settled_event_id(*, using: str = DEFAULT_DB_ALIAS) -> int:
    """The highest id N such that every event with an id up to N that will ever exist is committed now.

    Readers that follow the trail by id (forwarding) take only events up to N: an event with a lower id may
    commit after one with a higher id on another chain, and a reader that had moved past it would never see it.
    The events up to N must be read by a later statement, under READ COMMITTED (Django's default): its snapshot
    then shows every one of them. Events of the caller's own open transaction count as committed (it sees them).

    PostgreSQL, in three steps, each after the one before:

    a. S, the id sequence's value: every id handed out so far is at most S. The sequence is found through the
       id column (``pg_get_serial_sequence``), so a table re-created (partitioned, say) is followed.
    b. The chain locks held now (``pg_locks``, this database only).
    c. h_k, the newest event id of each held chain k visible now (0 when the chain has none).

    N = min(S, h_k for every held k). Proof: take an event e with id <= N, on chain k. ``audit_append`` numbers
    an event (the INSERT's nextval) while its transaction T holds chain k's lock, and T keeps that lock until it
    ends. e's id <= S, so e was numbered before (a). If k's lock was free at (b), T had ended before (b), and
    PostgreSQL makes a commit visible before it releases the transaction's locks: e is committed (or rolled
    back, and will never exist), and a statement begun after this one sees it. If k's lock was held at (b), then
    e's id <= N <= h_k: a chain's lock holders follow one another, and each numbers its events after every earlier
    holder's, so the events of chain k numbered up to h_k all come from holders no later than the one that
    committed h_k, which had ended by (c); the holder at (b) or any later one numbers its events above h_k. (c)
    runs in the same statement as (b), so its snapshot may be a moment older than (b); that only makes h_k
    smaller, and the argument holds for the h_k of any snapshot.

    This needs a sequence that hands out ids in order: with CACHE above 1 each session numbers from a block of
    its own, so an id below S may still be handed out later, and this raises UnsettledSequenceError. Ids given
    explicitly (a restore loading rows) are outside the argument: no append runs during a restore.

    SQLite: one writer at a time, whose events are numbered above every committed one; N is the newest id.
    """
    from django.db import connections

    from .services import CHAIN_LOCK_KEY  # not at the top: services imports this module

    connection = connections[using]
    table = AuditEvent._meta.db_table
    if connection.vendor != "postgresql":
        return AuditEvent.objects.using(using).aggregate(newest=Max("id"))["newest"] or 0
    with connection.cursor() as cursor:
        cursor.execute(_SEQUENCE_SQL, [table])
        sequence, cache = cursor.fetchone()
        if sequence is None:
            raise UnsettledSequenceError(f"{table}.id has no sequence: its ids cannot be followed in order.")
        if cache != 1:
            raise UnsettledSequenceError(
                f"The sequence {sequence} caches {cache} ids per session, so ids are not handed out in order and "
                f"readers following the audit trail by id could skip events: ALTER SEQUENCE {sequence} CACHE 1."
            )
        cursor.execute(f"SELECT last_value, is_called FROM {sequence}")  # noqa: S608 - a name from the catalogue
        last_value, is_called = cursor.fetchone()
        settled = last_value if is_called else last_value - 1
        cursor.execute(
            _HELD_CHAINS_SQL.format(table=connection.ops.quote_name(table)),
            {"first_key": CHAIN_LOCK_KEY, "chains": MAX_CHAINS},
        )
        for _chain, newest in cursor.fetchall():
            settled = min(settled, newest or 0)
    return settled
