"""Offline verification of compliance reports: the file, its signed manifest and the portal's Ed25519 public key.

What the portal signs (its README, "Report signatures"): the manifest's canonical bytes, i.e. the manifest without
``signature`` as JSON with sorted keys, no spaces and characters kept, in UTF-8 (``signature_scheme``
``manifest-v1``). The manifest carries the file's SHA-256, which ties the file to the signature. Manifests without
``signature_scheme`` are older: their signature covers the whole file. Nothing here needs the portal.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .errors import ConfigurationError, VerificationFailed

MANIFEST_SCHEME = "manifest-v1"
FILE_SCHEME = "file"
HASH_CHUNK = 1024 * 1024

SHA256_MISMATCH = "sha256 mismatch"
SIGNATURE_INVALID = "signature does not verify"
FINGERPRINT_DIFFERS = "key fingerprint differs"


def load_public_key(pem: bytes, *, source: str = "the public key") -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; ConfigurationError naming ``source`` when it is not one."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise ConfigurationError(f"{source} is not a PEM public key ('-----BEGIN PUBLIC KEY-----').") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigurationError(f"{source} is not an Ed25519 key; report signatures are Ed25519.")
    return key


def fingerprint_of(key: Ed25519PublicKey) -> str:
    """SHA-256 (hex) of the key's 32 raw bytes, as manifests name the signing key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def manifest_message(manifest: dict[str, Any]) -> bytes:
    """The bytes a ``manifest-v1`` signature covers."""
    unsigned = {name: value for name, value in manifest.items() if name != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file, read in chunks so memory stays small whatever its size."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A manifest file as a dict; ConfigurationError saying what is wrong with it."""
    try:
        manifest = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"No manifest file at {path}.") from None
    except (OSError, UnicodeError, ValueError) as exc:
        raise ConfigurationError(f"The manifest {path} is not readable JSON ({exc}).") from None
    if not isinstance(manifest, dict):
        raise ConfigurationError(f"The manifest {path} is not a JSON object.")
    return manifest


def report_problems(path: str | os.PathLike[str], manifest: dict[str, Any], key: Ed25519PublicKey) -> list[str]:
    """Every check the file fails against its manifest and ``key``; empty when it is authentic."""
    problems = []
    if file_sha256(path) != str(manifest.get("sha256", "")).lower():
        problems.append(SHA256_MISMATCH)
    try:
        signature = base64.b64decode(str(manifest.get("signature", "")), validate=True)
    except (binascii.Error, ValueError):
        signature = b""
    scheme = str(manifest.get("signature_scheme", FILE_SCHEME))
    try:
        if scheme == MANIFEST_SCHEME:
            key.verify(signature, manifest_message(manifest))
        elif scheme == FILE_SCHEME:
            # Older reports: the signature covers the whole file, which Ed25519 needs in one piece.
            key.verify(signature, Path(path).read_bytes())
        else:
            problems.append(f"unknown signature scheme {scheme!r} (known: {MANIFEST_SCHEME}, {FILE_SCHEME})")
    except InvalidSignature:
        problems.append(SIGNATURE_INVALID)
    if manifest.get("key_fingerprint") and manifest["key_fingerprint"] != fingerprint_of(key):
        problems.append(FINGERPRINT_DIFFERS)
    return problems


def report_verify(path: str | os.PathLike[str], manifest: dict[str, Any], key: Ed25519PublicKey) -> str:
    """Check a report file offline; the key's fingerprint when authentic, else VerificationFailed naming each
    problem."""
    if not Path(path).is_file():
        raise ConfigurationError(f"No report file at {path}.")
    problems = report_problems(path, manifest, key)
    if problems:
        raise VerificationFailed(Path(path).name, problems)
    return fingerprint_of(key)
