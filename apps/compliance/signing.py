"""Ed25519 signatures over the exact bytes of report files, and their verification.

The private key is ``settings.REPORT_SIGNING_KEY`` (PEM, PKCS#8). Anyone holding only the public key
(``GET /api/v1/compliance/public-key/``) can check a report with ``openssl pkeyutl -verify -rawin`` or a few
lines of Python: the signature is plain Ed25519 (RFC 8032) over the file's bytes, not over a digest of them.

Pure Ed25519 hashes the whole message twice, and the usual APIs want it in memory at once. Reports can be
hundreds of megabytes, so signing reads the file twice in chunks instead, with the same steps (RFC 8032,
section 5.1.6) and libsodium's group arithmetic: the signature is byte for byte the one ``cryptography`` would
make (Ed25519 is deterministic), in constant memory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mmap
import os
from collections.abc import Iterator
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from nacl import bindings as sodium

HASH_CHUNK = 1024 * 1024

SHA256_MISMATCH = "sha256 mismatch"
SIGNATURE_INVALID = "signature does not verify"
FINGERPRINT_DIFFERS = "key fingerprint differs"


class SigningKeyError(ImproperlyConfigured):
    """The configured or given key cannot be used; the message names it but never shows it."""


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
    """The public half of the configured signing key."""
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


def _chunks(path: str | os.PathLike) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            yield chunk


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file, read in chunks."""
    digest = hashlib.sha256()
    for chunk in _chunks(path):
        digest.update(chunk)
    return digest.hexdigest()


def _scalar_of(digest) -> bytes:
    """A SHA-512 digest as a scalar modulo the group order (little-endian, 32 bytes)."""
    return sodium.crypto_core_ed25519_scalar_reduce(digest.digest())


def sign_file(path: str | os.PathLike) -> tuple[str, str]:
    """Sign a file's exact bytes with the report key: ``(sha256_hex, signature_base64)``, in constant memory."""
    key = private_key()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    expanded = hashlib.sha512(seed).digest()
    secret = bytearray(expanded[:32])  # the secret scalar, clamped
    secret[0] &= 248
    secret[31] = (secret[31] & 127) | 64
    secret, nonce_prefix = bytes(secret), expanded[32:]
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    # First pass: the file's SHA-256 and the deterministic nonce r = SHA-512(prefix || M).
    sha256, nonce_digest = hashlib.sha256(), hashlib.sha512(nonce_prefix)
    for chunk in _chunks(path):
        sha256.update(chunk)
        nonce_digest.update(chunk)
    nonce = _scalar_of(nonce_digest)
    commitment = sodium.crypto_scalarmult_ed25519_base_noclamp(nonce)  # R = rB
    # Second pass: the challenge k = SHA-512(R || A || M); then S = r + k·a (mod L).
    challenge_digest = hashlib.sha512(commitment + public)
    for chunk in _chunks(path):
        challenge_digest.update(chunk)
    challenge = _scalar_of(challenge_digest)
    response = sodium.crypto_core_ed25519_scalar_add(nonce, sodium.crypto_core_ed25519_scalar_mul(challenge, secret))
    return sha256.hexdigest(), base64.b64encode(commitment + response).decode("ascii")


def _with_file_bytes(path: str | os.PathLike, use):
    # Verification (an auditor's or an administrator's check, not the worker's) uses the reference
    # implementation, which needs the whole message: a read-only memory map gives it the bytes without copying
    # them into the process's own memory.
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return use(b"")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return use(mapped)


def verify_file(
    path: str | os.PathLike, manifest: dict, *, public_key_to_use: Ed25519PublicKey | None = None
) -> list[str]:
    """Check a report file against its manifest; the problems found, empty when it is authentic.

    The hash and the signature are both checked (one changed byte fails both). The signature is checked with
    ``public_key_to_use`` or else the configured key; the manifest's ``key_fingerprint`` must name that key.
    """
    key = public_key_to_use or public_key()
    problems = []
    if file_sha256(path) != str(manifest.get("sha256", "")).lower():
        problems.append(SHA256_MISMATCH)
    try:
        signature = base64.b64decode(str(manifest.get("signature", "")), validate=True)
    except (binascii.Error, ValueError):
        signature = b""
    try:
        _with_file_bytes(path, lambda data: key.verify(signature, data))
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
            "key_fingerprint": fingerprint_of(key),
            "problems": problems,
        },
    )
    return problems, fingerprint_of(key)
