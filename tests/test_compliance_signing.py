"""Report signatures: Ed25519 over the file's bytes, checkable with only the public key (Python or openssl)."""

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from apps.audit.models import AuditEvent
from apps.compliance.rendering import render
from apps.compliance.reports.base import Section
from apps.compliance.signing import (
    HASH_CHUNK,
    file_sha256,
    key_fingerprint,
    private_key,
    public_key_pem,
    sign_file,
    verify_file,
)

OPENSSL = shutil.which("openssl")
PROJECT_DIR = Path(__file__).resolve().parents[1]


def pem_of(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def signing_key(settings):
    key = Ed25519PrivateKey.generate()
    settings.REPORT_SIGNING_KEY = pem_of(key)
    return key


@pytest.fixture
def report_file(tmp_path):
    path = tmp_path / "report.pdf"
    section = Section(
        name="accounts",
        title="Accounts",
        columns=["username", "findings"],
        rows=iter([["alice-admin", "privileged without MFA"], ["bob", ""]]),
        findings_column="findings",
    )
    meta = {"title": "Access review report", "kind": "access_review", "period_start": "2024-01-01T00:00:00+00:00"}
    with path.open("wb") as out:
        render([section], "pdf", out, meta)
    return path


@pytest.fixture
def signed(signing_key, report_file, tmp_path):
    """The report file, its manifest (as the portal writes it) and the public key's PEM file."""
    sha256, signature = sign_file(report_file)
    manifest = {
        "kind": "access_review",
        "parameters": {"period_start": "2024-01-01T00:00:00+00:00", "period_end": "2024-02-01T00:00:00+00:00"},
        "generated_at": "2024-02-01T03:00:00+00:00",
        "generated_by": "carl-compliance",
        "row_counts": {"accounts": 2},
        "sha256": sha256,
        "signature": signature,
        "key_fingerprint": key_fingerprint(),
    }
    manifest_path = tmp_path / "report.pdf.manifest.json"
    manifest_path.write_text(json.dumps(manifest))
    public_path = tmp_path / "public.pem"
    public_path.write_text(public_key_pem())
    return report_file, manifest_path, public_path


def flip_one_byte(path, offset=200):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_signature_verifies_in_python_with_only_the_public_key(signed):
    report, manifest_path, public_path = signed
    manifest = json.loads(manifest_path.read_text())

    # What an auditor runs: no portal code, only the public key, the file and the manifest.
    public = serialization.load_pem_public_key(public_path.read_bytes())
    public.verify(base64.b64decode(manifest["signature"]), report.read_bytes())
    assert manifest["sha256"] == file_sha256(report)
    with pytest.raises(InvalidSignature):
        public.verify(base64.b64decode(manifest["signature"]), report.read_bytes() + b"\n")


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
def test_signature_verifies_with_openssl_and_only_the_public_key(signed, tmp_path):
    report, manifest_path, public_path = signed
    signature_path = tmp_path / "report.sig"
    signature_path.write_bytes(base64.b64decode(json.loads(manifest_path.read_text())["signature"]))
    command = [OPENSSL, "pkeyutl", "-verify", "-pubin", "-inkey", str(public_path), "-rawin"]
    command += ["-in", str(report), "-sigfile", str(signature_path)]

    good = subprocess.run(command, capture_output=True, text=True, check=False)
    flip_one_byte(report)
    bad = subprocess.run(command, capture_output=True, text=True, check=False)

    assert good.returncode == 0, good.stderr
    assert "Signature Verified Successfully" in good.stdout
    assert bad.returncode != 0
    assert "Signature Verification Failure" in bad.stdout


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
def test_sha256sum_of_the_file_is_the_manifests_sha256(signed):
    report, manifest_path, _ = signed
    sha256sum = shutil.which("sha256sum")
    if sha256sum is None:
        pytest.skip("sha256sum is not installed")

    printed = subprocess.run([sha256sum, str(report)], capture_output=True, text=True, check=True).stdout

    assert printed.split()[0] == json.loads(manifest_path.read_text())["sha256"]


@pytest.mark.parametrize("size", [0, 1, 63, 64, HASH_CHUNK - 1, HASH_CHUNK, 2 * HASH_CHUNK + 17])
def test_streamed_signature_is_byte_for_byte_the_reference_ed25519_signature(settings, tmp_path, size):
    # Ed25519 is deterministic: signing in chunks must give exactly what the reference signs over the whole file.
    data = os.urandom(size)
    path = tmp_path / "report.bin"
    path.write_bytes(data)
    for _ in range(3):  # several keys: every secret scalar must come out right
        key = Ed25519PrivateKey.generate()
        settings.REPORT_SIGNING_KEY = pem_of(key)
        sha256, signature = sign_file(path)
        assert base64.b64decode(signature) == key.sign(data)
        assert sha256 == hashlib.sha256(data).hexdigest()


def test_fingerprint_is_the_sha256_of_the_raw_public_key(signing_key):
    raw = signing_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key_fingerprint() == hashlib.sha256(raw).hexdigest()
    assert public_key_pem().startswith("-----BEGIN PUBLIC KEY-----")


def test_verify_file_finds_no_problem_in_an_untouched_report(signed):
    report, manifest_path, _ = signed

    assert verify_file(report, json.loads(manifest_path.read_text())) == []


def test_one_changed_byte_fails_both_the_hash_and_the_signature(signed):
    report, manifest_path, _ = signed
    flip_one_byte(report)

    assert verify_file(report, json.loads(manifest_path.read_text())) == [
        "sha256 mismatch",
        "signature does not verify",
    ]


def test_a_manifest_from_another_key_fails_the_signature_and_the_fingerprint(signed, settings):
    report, manifest_path, _ = signed
    settings.REPORT_SIGNING_KEY = pem_of(Ed25519PrivateKey.generate())

    assert verify_file(report, json.loads(manifest_path.read_text())) == [
        "signature does not verify",
        "key fingerprint differs",
    ]


def test_an_empty_report_file_is_signed_and_verified_too(signing_key, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    sha256, signature = sign_file(empty)

    assert sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert verify_file(empty, {"sha256": sha256, "signature": signature}) == []


@pytest.mark.parametrize(
    "value",
    ["-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n", "secret-but-not-pem", ""],
)
def test_an_unreadable_signing_key_is_improperly_configured_naming_the_setting_but_not_its_value(settings, value):
    settings.REPORT_SIGNING_KEY = value

    with pytest.raises(ImproperlyConfigured, match="REPORT_SIGNING_KEY") as raised:
        private_key()
    if value:
        assert value.strip() not in str(raised.value)
        assert "bm90IGEga2V5" not in str(raised.value)


def test_a_signing_key_that_is_not_ed25519_is_refused(settings):
    settings.REPORT_SIGNING_KEY = pem_of(generate_private_key(public_exponent=65537, key_size=2048))

    with pytest.raises(ImproperlyConfigured, match=r"REPORT_SIGNING_KEY is a RSAPrivateKey key; .*Ed25519"):
        sign_file(__file__)


# --- manage.py report verify


def run_verify(*args) -> str:
    out = io.StringIO()
    call_command("report", "verify", *map(str, args), stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_report_verify_says_ok_and_audits_a_success(signed):
    report, manifest_path, _ = signed

    printed = run_verify(report, manifest_path)

    assert printed.startswith("OK: report.pdf matches its manifest: SHA-256 ")
    assert key_fingerprint() in printed
    event = AuditEvent.objects.get(action="compliance.report.verified")
    assert event.outcome == "success"
    assert event.object_repr == "report.pdf"
    assert json.loads(event.changes_text)["problems"] == []


@pytest.mark.django_db
def test_report_verify_of_a_changed_byte_fails_saying_hash_and_signature_and_audits_a_failure(signed):
    report, manifest_path, _ = signed
    flip_one_byte(report)

    with pytest.raises(CommandError) as raised:
        run_verify(report, manifest_path)

    assert str(raised.value) == "FAILED: report.pdf: sha256 mismatch; signature does not verify."
    assert raised.value.returncode == 1
    event = AuditEvent.objects.get(action="compliance.report.verified")
    assert event.outcome == "failure"
    assert json.loads(event.changes_text)["problems"] == ["sha256 mismatch", "signature does not verify"]


@pytest.mark.django_db
def test_report_verify_with_a_changed_signature_fails_on_the_signature_only(signed):
    report, manifest_path, _ = signed
    manifest = json.loads(manifest_path.read_text())
    signature = bytearray(base64.b64decode(manifest["signature"]))
    signature[0] ^= 0x01
    manifest["signature"] = base64.b64encode(bytes(signature)).decode()
    manifest_path.write_text(json.dumps(manifest))

    with pytest.raises(CommandError, match=r"^FAILED: report.pdf: signature does not verify\.$"):
        run_verify(report, manifest_path)


@pytest.mark.django_db
def test_report_verify_with_the_right_public_key_file_passes_without_the_signing_key(signed, settings):
    report, manifest_path, public_path = signed
    settings.REPORT_SIGNING_KEY = ""

    assert run_verify(report, manifest_path, "--public-key", public_path).startswith("OK: ")


@pytest.mark.django_db
def test_report_verify_with_a_wrong_public_key_fails(signed, tmp_path):
    report, manifest_path, _ = signed
    other = tmp_path / "other.pem"
    other.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )

    with pytest.raises(CommandError, match=r"^FAILED: report.pdf: signature does not verify; key fingerprint differs"):
        run_verify(report, manifest_path, "--public-key", other)


@pytest.mark.django_db
def test_report_verify_with_a_public_key_file_that_is_not_a_key_says_so(signed, tmp_path):
    report, manifest_path, _ = signed
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")

    with pytest.raises(CommandError, match=r"--public-key .*junk.pem is not a PEM public key"):
        run_verify(report, manifest_path, "--public-key", junk)


@pytest.mark.django_db
def test_report_verify_of_a_missing_file_or_unreadable_manifest_is_one_clear_line(signed, tmp_path):
    report, manifest_path, _ = signed
    (tmp_path / "bad.json").write_text("{not json")

    with pytest.raises(CommandError, match=r"No report file at .*missing.pdf"):
        run_verify(tmp_path / "missing.pdf", manifest_path)
    with pytest.raises(CommandError, match=r"The manifest .*bad.json is not readable JSON"):
        run_verify(report, tmp_path / "bad.json")


def test_report_verify_command_exits_1_with_one_line_and_no_traceback(signed, transactional_db, settings):
    # A real child process on the test database; transactional_db empties the tables it writes to afterwards.
    report, manifest_path, _ = signed
    flip_one_byte(report)
    database = connection.settings_dict
    database_url = (
        f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST']}:{database['PORT']}/"
        f"{database['NAME']}"
    )
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "TEST_DATABASE_URL": database_url,
        "REPORT_SIGNING_KEY": settings.REPORT_SIGNING_KEY,
    }

    result = subprocess.run(
        [sys.executable, "manage.py", "report", "verify", str(report), str(manifest_path)],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "CommandError: FAILED: report.pdf: sha256 mismatch; signature does not verify."
    ]
    assert AuditEvent.objects.get(action="compliance.report.verified").outcome == "failure"
