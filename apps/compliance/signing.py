"""Ed25519 signatures of compliance reports, and their verification with the public key alone.

A report is vouched for by its manifest, which carries the file's SHA-256 and size, what the report covers and the
key's fingerprint. The portal signs the manifest's canonical bytes (``manifest_message``) with ``cryptography``'s
Ed25519, not the file: the message is small and fixed once the stored file has been hashed (in chunks, once), so
memory stays constant whatever the file's size, and a file that changes afterwards fails its SHA-256. Every
signature is verified with the published public key before it is stored.

Manifests written before this scheme have no ``signature_scheme``: their signature is pure Ed25519 over the whole
file, and they are still verified that way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mmap
import os
from functools import lru_cache
from typing import BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .rendering import canonical

HASH_CHUNK = 1024 * 1024
SIGNATURE_ALGORITHM = "Ed25519"
# The signature covers manifest_message(manifest); the version names that canonical form.
MANIFEST_SCHEME = "manifest-v1"
# Manifests without "signature_scheme" (reports signed before manifests were): Ed25519 over the file's bytes.
FILE_SCHEME = "file"
SCHEMES = (MANIFEST_SCHEME, FILE_SCHEME)

SHA256_MISMATCH = "sha256 mismatch"
SIGNATURE_INVALID = "signature does not verify"
FINGERPRINT_DIFFERS = "key fingerprint differs"


class SigningKeyError(ImproperlyConfigured):
    """The configured or given key cannot be used; the message names it but never shows it."""


class SignatureNotVerified(SigningKeyError):
    """A fresh signature does not verify with the published public key: it is never stored."""


@lru_cache(maxsize=4)
def _private_key_from(pem: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnicodeError):
        # The loader's message is not shown: with a malformed key it could quote part of it.
        raise SigningKeyError(
            "REPORT_SIGNING_KEY is not a readable unencrypted PEM private key "
            "(expected an Ed25519 key in PKCS#8 PEM, '-----BEGIN PRIVATE KEY-----')."
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(
            f"REPORT_SIGNING_KEY is a {type(key).__name__.removeprefix('_')} key; reports are signed with Ed25519: "
            "generate one with `openssl genpkey -algorithm ed25519`."
        )
    return key


def private_key() -> Ed25519PrivateKey:
    """The report signing key from ``REPORT_SIGNING_KEY``; SigningKeyError (ImproperlyConfigured) when unusable."""
    pem = getattr(settings, "REPORT_SIGNING_KEY", None)
    if not pem or not isinstance(pem, str):
        raise SigningKeyError("REPORT_SIGNING_KEY is not set: reports cannot be signed.")
    return _private_key_from(pem)


def public_key() -> Ed25519PublicKey:
    """The published public key: the half of the configured signing key that auditors are given."""
    return private_key().public_key()


def public_key_pem() -> str:
    """The public key in PEM (SubjectPublicKeyInfo), as auditors need it for openssl or Python."""
    return (
        public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def fingerprint_of(key: Ed25519PublicKey) -> str:
    """SHA-256 (hex) of a public key's 32 raw bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def key_fingerprint() -> str:
    """SHA-256 (hex) of the configured public key's 32 raw bytes."""
    return fingerprint_of(public_key())


def load_public_key(pem: bytes | str, *, source: str = "the public key") -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; SigningKeyError naming ``source`` when it is not one."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise SigningKeyError(f"{source} is not a PEM public key ('-----BEGIN PUBLIC KEY-----').") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{source} is not an Ed25519 public key.")
    return key


def stream_sha256(handle: BinaryIO) -> tuple[str, int]:
    """SHA-256 (hex) and size of what is left to read in a binary file, read in chunks (constant memory)."""
    digest, size = hashlib.sha256(), 0
    while chunk := handle.read(HASH_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file, read in chunks."""
    with open(path, "rb") as handle:
        return stream_sha256(handle)[0]


def manifest_message(manifest: dict) -> bytes:
    """The bytes a manifest's signature covers: the manifest without ``signature``, as canonical JSON in UTF-8
    (sorted keys, no spaces, characters kept), i.e. ``json.dumps(m, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False).encode()``."""
    return canonical({name: value for name, value in manifest.items() if name != "signature"}).encode("utf-8")


def manifest_sign(manifest: dict) -> dict:
    """The manifest completed with the key's fingerprint, the scheme and the Ed25519 signature of its canonical
    bytes; ``SignatureNotVerified`` if the signature does not verify with the published public key.

    The manifest must already carry the SHA-256 of the stored file: that is what ties the file to the signature.
    """
    published = public_key()
    signed = {
        **manifest,
        "signature_algorithm": SIGNATURE_ALGORITHM,
        "signature_scheme": MANIFEST_SCHEME,
        "key_fingerprint": fingerprint_of(published),
    }
    message = manifest_message(signed)
    signature = private_key().sign(message)
    # An auditor only has the public key: a signature it would reject must fail the report, not be handed out.
    try:
        published.verify(signature, message)
    except InvalidSignature:
        raise SignatureNotVerified(
            f"The report's signature does not verify with the published public key {signed['key_fingerprint']}: "
            "REPORT_SIGNING_KEY is not the key whose public half is published. Nothing was stored."
        ) from None
    return {**signed, "signature": base64.b64encode(signature).decode("ascii")}


def signature_scheme(manifest: dict) -> str:
    """What the manifest's signature covers: ``manifest-v1`` (its canonical bytes) or ``file`` (older reports)."""
    return str(manifest.get("signature_scheme", FILE_SCHEME))


def _verify_over_file(key: Ed25519PublicKey, signature: bytes, path: str | os.PathLike) -> None:
    # Older reports' signatures cover the whole file, and Ed25519 verification needs the whole message: a read-only
    # memory map gives it the bytes without copying them into the process's own memory.
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            key.verify(signature, b"")
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            key.verify(signature, mapped)


def verify_file(
    path: str | os.PathLike, manifest: dict, *, public_key_to_use: Ed25519PublicKey | None = None
) -> list[str]:
    """Check a report file against its manifest; the problems found, empty when it is authentic.

    The file's SHA-256 must be the manifest's, the signature must verify (over the canonical manifest, or over the
    file for manifests of the ``file`` scheme) with ``public_key_to_use`` or else the configured key, and the
    manifest's ``key_fingerprint`` must name that key.
    """
    key = public_key_to_use or public_key()
    scheme = signature_scheme(manifest)
    problems = []
    if file_sha256(path) != str(manifest.get("sha256", "")).lower():
        problems.append(SHA256_MISMATCH)
    try:
        signature = base64.b64decode(str(manifest.get("signature", "")), validate=True)
    except (binascii.Error, ValueError):
        signature = b""
    try:
        if scheme == MANIFEST_SCHEME:
            key.verify(signature, manifest_message(manifest))
        elif scheme == FILE_SCHEME:
            _verify_over_file(key, signature, path)
        else:
            problems.append(f"unknown signature scheme {scheme!r} (known: {', '.join(SCHEMES)})")
    except InvalidSignature:
        problems.append(SIGNATURE_INVALID)
    if manifest.get("key_fingerprint") and manifest["key_fingerprint"] != fingerprint_of(key):
        problems.append(FINGERPRINT_DIFFERS)
    return problems


def report_verify(
    *, path: str | os.PathLike, manifest: dict, public_key: Ed25519PublicKey | None = None, actor=None
) -> tuple[list[str], str]:
    """Verify a report file against its manifest and audit the check (``compliance.report.verified``).

    Returns the problems (empty when authentic) and the fingerprint of the key used.
    """
    # Imported here: the crypto above works without the audit app (and without a database).
    from apps.audit.choices import Outcome
    from apps.audit.services import event_record

    from .models import Report

    key = public_key or private_key().public_key()
    problems = verify_file(path, manifest, public_key_to_use=key)
    report_id = manifest.get("report_id")
    report = Report.objects.filter(pk=report_id).first() if isinstance(report_id, int) else None
    name = os.path.basename(os.fspath(path))
    event_record(
        action="compliance.report.verified",
        actor=actor,
        obj=report,
        object_type="" if report else "compliance.reportfile",
        object_repr="" if report else name,
        outcome=Outcome.FAILURE if problems else Outcome.SUCCESS,
        changes={
            "file": name,
            "sha256": manifest.get("sha256", ""),
            # Not "signature_scheme": the audit trail masks values under names that look secret.
            "signed_over": signature_scheme(manifest),
            "key_fingerprint": fingerprint_of(key),
            "problems": problems,
        },
    )
    return problems, fingerprint_of(key)
