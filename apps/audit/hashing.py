"""The canonical encoding every audit hash is computed over."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime

GENESIS_HASH = "0" * 64
# The fields of an event that its hash covers, in the order export and verify read them.
HASHED_FIELDS = (
    "timestamp",
    "actor_username",
    "ip",
    "user_agent",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "changes",
    "request_id",
    "outcome",
    "prev_hash",
)
_encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_timestamp(value: datetime) -> str:
    return value.isoformat(timespec="microseconds")


def event_hash(values: dict) -> str:
    """SHA-256 of the canonical JSON of ``values`` (the HASHED_FIELDS, timestamp as text)."""
    return hashlib.sha256(_encoder.encode(values).encode()).hexdigest()


def row_hash(row: tuple) -> str:
    """Hash of a row read as ``values_list(*HASHED_FIELDS)`` with a datetime timestamp."""
    values = dict(zip(HASHED_FIELDS, row, strict=True))
    values["timestamp"] = canonical_timestamp(values["timestamp"])
    return event_hash(values)


def json_normalized(value):
    """What ``value`` reads back as after a JSON round trip (how the database returns it)."""
    return json.loads(json.dumps(value, default=str))


def checkpoint_signature(key: bytes, *, head_id: int, head_hash: str, event_count: int, previous: str) -> str:
    message = f"{head_id}|{head_hash}|{event_count}|{previous}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()
