"""The canonical encoding every audit hash is computed over, in Python and in PostgreSQL.

An event's hash is SHA-256 over its HASHED_FIELDS as text, each written as
``<length>:<value>`` (length in characters), so no value can spill into the
next. The same text is built by ``event_hash`` when an event is recorded and by
``POSTGRES_HASH_SQL`` when PostgreSQL verifies the chain itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import datetime

GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "timestamp",
    "actor_username",
    "ip",
    "user_agent",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "changes_text",
    "request_id",
    "outcome",
    "prev_hash",
)
_changes_encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)

# Each hashed field as PostgreSQL must print it to match Python. The timestamp's text always has 32 characters
# (``canonical_timestamp`` of a UTC time, years 1 to 9999), so its length is written as a constant: formatting
# it twice would cost a quarter of a verification. Every other field is text and never NULL.
POSTGRES_TIMESTAMP_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'  # to_char's form of ``canonical_timestamp``
_POSTGRES_TIMESTAMP = f"to_char(timestamp AT TIME ZONE 'UTC', '{POSTGRES_TIMESTAMP_FORMAT}')"
TIMESTAMP_TEXT_LENGTH = 32
POSTGRES_HASH_SQL = "encode(sha256(convert_to({}, 'UTF8')), 'hex')".format(
    " || ".join(
        f"'{TIMESTAMP_TEXT_LENGTH}:' || {_POSTGRES_TIMESTAMP}"
        if name == "timestamp"
        else f"length({name})::text || ':' || {name}"
        for name in HASHED_FIELDS
    )
)


def chain_genesis(chain: int) -> str:
    """The first link of a chain: GENESIS_HASH for chain 0 (the one chain before there were several), else SHA-256
    of ``opsdeck-audit-chain-<n>``, so no two chains start alike (SQL: ``audit_chain_genesis``, migration 0012)."""
    if chain == 0:
        return GENESIS_HASH
    return hashlib.sha256(f"opsdeck-audit-chain-{chain}".encode()).hexdigest()


def canonical_timestamp(value: datetime) -> str:
    return value.isoformat(timespec="microseconds")


def changes_text(changes: dict) -> str:
    """The canonical JSON of a (JSON-normalized) changes dict: sorted keys, no spaces."""
    return _changes_encoder.encode(changes)


def event_hash(values: dict[str, str]) -> str:
    """SHA-256 of the HASHED_FIELDS of ``values``, all text (timestamp canonical, no address as "")."""
    return _hash_texts([values[name] for name in HASHED_FIELDS])


def row_hash(row: Sequence) -> str:
    """Hash of a row read as ``values_list(*HASHED_FIELDS)`` (datetime timestamp, address possibly None)."""
    timestamp, actor_username, ip, *rest = row
    return _hash_texts([canonical_timestamp(timestamp), actor_username, ip or "", *rest])


def _hash_texts(texts: Sequence[str]) -> str:
    return hashlib.sha256("".join(f"{len(text)}:{text}" for text in texts).encode()).hexdigest()


def json_normalized(value):
    """What ``value`` reads back as after a JSON round trip (how the database returns it)."""
    return json.loads(json.dumps(value, default=str))


def checkpoint_signature(
    key: bytes, *, head_id: int, head_hash: str, event_count: int, previous: str, heads: dict | None = None
) -> str:
    """HMAC over what a checkpoint states; ``heads`` (per chain: id and hash) is covered when given (checkpoints
    signed before there were several chains have none, and keep their signatures)."""
    message = f"{head_id}|{head_hash}|{event_count}|{previous}"
    if heads:
        message += "|" + json.dumps(heads, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()
