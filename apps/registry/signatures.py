"""Signatures of model versions: a JSON Schema for one input and one for one output, checked with ``jsonschema``.

A schema is checked against its own metaschema when it is set (Draft 2020-12 unless it names another in
``$schema``). References must stay inside the schema (``#…``): a remote ``$ref`` would make validation fetch or fail
at prediction time, and nothing may be downloaded at run time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from jsonschema import exceptions, validators
from referencing.exceptions import Unresolvable

MAX_SCHEMA_BYTES = 20_000
MAX_MESSAGE = 300  # a mismatch quotes the value: an input may be 10,000 characters long


class SchemaRefused(ValueError):
    """The schema itself cannot be used; the message says why."""


class SchemaBroken(ValueError):
    """A stored schema failed while checking a value (a reference it names cannot be resolved)."""


@dataclass(frozen=True)
class Mismatch:
    """The first item of a list that does not match its schema, and where within it."""

    index: int
    path: str  # JSONPath inside the item: "$" for the item itself, "$.label" for its label
    message: str

    def describe(self, what: str) -> str:
        where = "" if self.path == "$" else f" at {self.path}"
        return f"{what} {self.index}{where}: {self.message}"


def schema_check(schema) -> dict | None:
    """The schema as given, or None to clear it; SchemaRefused when it is not a usable JSON Schema."""
    if schema is None:
        return None
    if not isinstance(schema, dict):
        raise SchemaRefused("a JSON Schema must be an object (or null to remove it).")
    size = len(json.dumps(schema))
    if size > MAX_SCHEMA_BYTES:
        raise SchemaRefused(f"it is {size:,} bytes of JSON; the limit is {MAX_SCHEMA_BYTES:,}.")
    if remote := _remote_references(schema):
        raise SchemaRefused(
            f"$ref {remote!r} points outside the schema; only references starting with '#' are allowed."
        )
    if dangling := _dangling_pointer(schema, schema):
        raise SchemaRefused(f"$ref {dangling!r} points at nothing in the schema.")
    try:
        _validator_class(schema).check_schema(schema)
    except exceptions.SchemaError as exc:
        at = f" at {exc.json_path}" if exc.json_path != "$" else ""
        raise SchemaRefused(f"not a valid JSON Schema{at}: {exc.message}") from None
    return schema


def first_mismatch(schema: dict | None, items: list) -> Mismatch | None:
    """The first of ``items`` that does not match ``schema`` (the most relevant of its errors), or None."""
    if not schema:
        return None
    validator = _validator(json.dumps(schema, sort_keys=True))
    for index, item in enumerate(items):
        try:
            error = exceptions.best_match(validator.iter_errors(item))
        except Unresolvable as exc:
            raise SchemaBroken(f"a reference cannot be resolved: {exc}") from None
        if error is not None:
            message = error.message if len(error.message) <= MAX_MESSAGE else error.message[:MAX_MESSAGE] + "…"
            return Mismatch(index=index, path=error.json_path, message=message)
    return None


def _validator_class(schema: dict):
    return validators.validator_for(schema, default=validators.Draft202012Validator)


@lru_cache(maxsize=64)
def _validator(schema_json: str):
    """One validator per distinct schema: building one compiles its keywords, predictions reuse it."""
    schema = json.loads(schema_json)
    return _validator_class(schema)(schema)


def _remote_references(node) -> str | None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str) and not value.startswith("#"):
                return value
            if found := _remote_references(value):
                return found
    elif isinstance(node, list):
        for value in node:
            if found := _remote_references(value):
                return found
    return None


def _dangling_pointer(node, root) -> str | None:
    """The first ``#/…`` JSON Pointer reference that points at nothing in ``root``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/") and not _pointer_found(root, value):
                return value
            if found := _dangling_pointer(value, root):
                return found
    elif isinstance(node, list):
        for value in node:
            if found := _dangling_pointer(value, root):
                return found
    return None


def _pointer_found(root, reference: str) -> bool:
    target = root
    for token in reference[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and token in target:
            target = target[token]
        elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
            target = target[int(token)]
        else:
            return False
    return True
