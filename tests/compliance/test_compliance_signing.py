"""Report signatures: cryptography's Ed25519 over the canonical manifest (which carries the stored file's SHA-256),
checked before anything is stored, verifiable with only the public key; older reports (signed over the whole file)
still verify."""

import base64
import hashlib
import io
import json
import os
import re
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
from apps.compliance import services, signing
from apps.compliance.choices import ReportFormat, ReportKind
from apps.compliance.models import Report
from apps.compliance.signing import key_fingerprint, manifest_sign, private_key, public_key_pem, verify_file
from apps.jobs.choices import JobStatus
from tests.compliance.test_compliance_api import run_report
from tests.helpers import PROJECT_DIR, manifest_signed_bytes

OPENSSL, JQ = shutil.which("openssl"), shutil.which("jq")
needs_openssl = pytest.mark.skipif(OPENSSL is None or JQ is None, reason="openssl and jq are needed")


def pem_of(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem_of(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def flip_one_byte(path: Path, offset: int = 200) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def readme_block(marker: str) -> str:
    """The README's fenced code block that contains ``marker``: the tests run what auditors are told to run."""
    blocks = re.findall(r"```\w*\n(.*?)```", (PROJECT_DIR / "README.md").read_text(), flags=re.DOTALL)
    [block] = [block for block in blocks if marker in block]
    return block


PYTHON_RECIPE = readme_block('load_pem_public_key(open("public.pem", "rb").read())')
OPENSSL_RECIPE = readme_block("-rawin -in manifest.signed")
OLD_OPENSSL_RECIPE = readme_block("-rawin -in report.pdf ")


@pytest.fixture
def signing_key(settings):
    key = Ed25519PrivateKey.generate()
    settings.REPORT_SIGNING_KEY = pem_of(key)
    return key


@pytest.fixture
def report_storage(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def generate_report(actor) -> Report:
    """A report made as the worker makes it (the task's body, run here)."""
    start, end = services.previous_month()
    report = services.report_request(
        kind=ReportKind.ACCESS_REVIEW, fmt=ReportFormat.PDF, period_start=start, period_end=end, actor=actor
    )
    run_report(report.pk)
    report.refresh_from_db()
    return report


@pytest.fixture
def generated(signing_key, report_storage, compliance_user, tmp_path):
    """A generated report as an auditor receives it: report.pdf, its manifest and the public key, in one folder."""
    report = generate_report(compliance_user)
    assert report.status == JobStatus.COMPLETED, report.error
    stored = report_storage / report.file.name
    folder = tmp_path / "auditor"
    folder.mkdir()
    shutil.copyfile(stored, folder / "report.pdf")
    shutil.copyfile(f"{stored}.manifest.json", folder / "report.pdf.manifest.json")
    (folder / "public.pem").write_text(public_key_pem())
    return report, stored, folder


def run_verify(*args) -> str:
    out = io.StringIO()
    call_command("report", "verify", *map(str, args), stdout=out)
    return out.getvalue()


def run_recipe(command: list[str], folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=60, check=False)


# --- What is signed, and that it verifies with only the public key


@pytest.mark.django_db
def test_signature_verifies_with_cryptography_over_the_manifest_bytes_not_the_file(generated):
    report, stored, folder = generated
    manifest = json.loads((folder / "report.pdf.manifest.json").read_text())
    public = serialization.load_pem_public_key((folder / "public.pem").read_bytes())
    signature = base64.b64decode(manifest["signature"])

    public.verify(signature, manifest_signed_bytes(manifest))  # raises InvalidSignature if not
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == manifest["sha256"] == report.sha256
    assert manifest["size_bytes"] == stored.stat().st_size
    assert (manifest["signature_scheme"], manifest["key_fingerprint"]) == ("manifest-v1", key_fingerprint())
    assert manifest == report.manifest
    with pytest.raises(InvalidSignature):  # the file itself is not what is signed any more
        public.verify(signature, stored.read_bytes())


@pytest.mark.django_db
def test_readme_python_recipe_passes_an_authentic_report_and_fails_a_changed_file_or_manifest(generated):
    _, _, folder = generated
    command = [sys.executable, "-c", PYTHON_RECIPE]

    good = run_recipe(command, folder)
    flip_one_byte(folder / "report.pdf")
    changed_file = run_recipe(command, folder)
    manifest_path = folder / "report.pdf.manifest.json"
    forged = json.loads(manifest_path.read_text())
    forged["sha256"] = hashlib.sha256((folder / "report.pdf").read_bytes()).hexdigest()  # the forger's fix-up
    manifest_path.write_text(json.dumps(forged))
    changed_manifest = run_recipe(command, folder)

    assert (good.returncode, good.stdout) == (0, "authentic\n"), good.stderr
    assert changed_file.returncode != 0
    assert "the file is not the one the manifest describes" in changed_file.stderr
    assert changed_manifest.returncode != 0
    assert "InvalidSignature" in changed_manifest.stderr


@needs_openssl
@pytest.mark.django_db
def test_readme_openssl_recipe_verifies_the_signature_hash_and_fingerprint(generated):
    report, _, folder = generated

    good = run_recipe(["bash", "-e", "-c", OPENSSL_RECIPE], folder)
    flip_one_byte(folder / "report.pdf")
    bad = run_recipe(["bash", "-e", "-c", OPENSSL_RECIPE], folder)

    assert good.returncode == 0, good.stderr
    assert "Signature Verified Successfully" in good.stdout
    assert "report.pdf: OK" in good.stdout
    assert report.key_fingerprint in good.stdout
    assert bad.returncode != 0  # the signature (over the manifest) holds; the file's hash does not
    assert "report.pdf: FAILED" in bad.stdout


# --- What the worker stores


@pytest.mark.django_db
def test_a_signature_that_does_not_verify_with_the_published_key_is_never_stored(
    signing_key, report_storage, compliance_user, monkeypatch
):
    # The published public key is not the signing key's half: an auditor could verify nothing that is signed.
    published = Ed25519PrivateKey.generate().public_key()
    monkeypatch.setattr(signing, "public_key", lambda: published)

    report = generate_report(compliance_user)

    assert report.status == JobStatus.FAILED
    assert "does not verify with the published public key" in report.error
    assert signing.fingerprint_of(published) in report.error
    assert (report.file.name, report.signature, report.sha256, report.manifest) == ("", "", "", {})
    assert [path for path in report_storage.rglob("*") if path.is_file()] == []
    assert AuditEvent.objects.get(action="compliance.report.generated").outcome == "failure"


# --- manage.py report verify


@pytest.mark.django_db
def test_report_verify_passes_a_generated_report_and_audits_it(generated):
    report, stored, _ = generated

    printed = run_verify(stored, f"{stored}.manifest.json")

    assert printed.startswith(f"OK: {stored.name} matches its manifest: SHA-256 {report.sha256}, ")
    assert f"Ed25519 signature over the manifest valid for key {key_fingerprint()}" in printed
    event = AuditEvent.objects.get(action="compliance.report.verified")
    assert (event.outcome, event.object_id) == ("success", str(report.pk))


@pytest.mark.django_db
def test_report_verify_fails_a_stored_file_altered_after_signing(generated):
    _, stored, _ = generated
    flip_one_byte(stored)

    with pytest.raises(CommandError) as raised:
        run_verify(stored, f"{stored}.manifest.json")

    assert str(raised.value) == f"FAILED: {stored.name}: sha256 mismatch."
    assert raised.value.returncode == 1
    event = AuditEvent.objects.get(action="compliance.report.verified")
    assert event.outcome == "failure"
    assert json.loads(event.changes_text)["problems"] == ["sha256 mismatch"]


@pytest.mark.django_db
def test_report_verify_fails_a_manifest_rewritten_to_match_an_altered_file(generated):
    *_, folder = generated
    report, manifest_path = folder / "report.pdf", folder / "report.pdf.manifest.json"
    flip_one_byte(report)
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "sha256": hashlib.sha256(report.read_bytes()).hexdigest()}))

    with pytest.raises(CommandError, match=r"^FAILED: report.pdf: signature does not verify\.$"):
        run_verify(report, manifest_path)


@pytest.mark.django_db
def test_removing_the_scheme_does_not_pass_a_manifest_signature_off_as_a_file_signature(generated):
    _, _, folder = generated
    manifest_path = folder / "report.pdf.manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["signature_scheme"]
    manifest_path.write_text(json.dumps(manifest))

    with pytest.raises(CommandError, match=r"^FAILED: report.pdf: signature does not verify\.$"):
        run_verify(folder / "report.pdf", manifest_path)


def test_an_unknown_signature_scheme_is_named(signing_key, tmp_path):
    path = tmp_path / "report.csv"
    path.write_bytes(b"a,b\n")
    manifest = manifest_sign({"sha256": hashlib.sha256(b"a,b\n").hexdigest()})
    manifest["signature_scheme"] = "ed448-someday"

    assert verify_file(path, manifest) == ["unknown signature scheme 'ed448-someday' (known: manifest-v1, file)"]


# --- Reports signed before manifests were: pure Ed25519 over the whole file


@pytest.fixture
def old_report(signing_key, tmp_path):
    """A report and manifest as earlier versions wrote them (no signature_scheme), signed with cryptography."""
    folder = tmp_path / "old"
    folder.mkdir()
    data = b"username,findings\nalice-admin,privileged without MFA\n" * 50
    (folder / "report.pdf").write_bytes(data)
    manifest = {
        "report_id": 4,
        "kind": "access_review",
        "sha256": hashlib.sha256(data).hexdigest(),
        "signature_algorithm": "Ed25519",
        "signature": base64.b64encode(signing_key.sign(data)).decode(),
        "key_fingerprint": key_fingerprint(),
    }
    (folder / "report.pdf.manifest.json").write_text(json.dumps(manifest))
    (folder / "public.pem").write_bytes(public_pem_of(signing_key))
    return folder


@pytest.mark.django_db
def test_an_old_report_signed_over_the_whole_file_still_verifies(old_report):
    printed = run_verify(old_report / "report.pdf", old_report / "report.pdf.manifest.json")

    assert printed.startswith("OK: report.pdf matches its manifest: ")
    assert "Ed25519 signature over the whole file (older report) valid" in printed
    event = AuditEvent.objects.get(action="compliance.report.verified")
    assert json.loads(event.changes_text)["signed_over"] == "file"


@pytest.mark.django_db
def test_an_old_report_with_a_changed_byte_fails_both_hash_and_signature(old_report):
    flip_one_byte(old_report / "report.pdf")

    with pytest.raises(CommandError, match=r"^FAILED: report.pdf: sha256 mismatch; signature does not verify\.$"):
        run_verify(old_report / "report.pdf", old_report / "report.pdf.manifest.json")


@needs_openssl
def test_readme_openssl_recipe_for_older_reports_verifies_them(old_report):
    good = run_recipe(["bash", "-e", "-c", OLD_OPENSSL_RECIPE], old_report)
    flip_one_byte(old_report / "report.pdf")
    bad = run_recipe(["bash", "-e", "-c", OLD_OPENSSL_RECIPE], old_report)

    assert good.returncode == 0, good.stderr
    assert "Signature Verified Successfully" in good.stdout
    assert bad.returncode != 0


# --- Keys


def test_fingerprint_is_the_sha256_of_the_raw_public_key(signing_key):
    raw = signing_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key_fingerprint() == hashlib.sha256(raw).hexdigest()
    assert public_key_pem().startswith("-----BEGIN PUBLIC KEY-----")


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
        manifest_sign({"sha256": "0" * 64})


@pytest.mark.django_db
def test_report_verify_with_the_right_public_key_file_passes_without_the_signing_key(old_report, settings):
    settings.REPORT_SIGNING_KEY = ""

    printed = run_verify(
        old_report / "report.pdf", old_report / "report.pdf.manifest.json", "--public-key", old_report / "public.pem"
    )

    assert printed.startswith("OK: ")


@pytest.mark.django_db
def test_report_verify_with_a_wrong_public_key_fails(old_report, tmp_path):
    other = tmp_path / "other.pem"
    other.write_bytes(public_pem_of(Ed25519PrivateKey.generate()))

    with pytest.raises(CommandError, match=r"^FAILED: report.pdf: signature does not verify; key fingerprint differs"):
        run_verify(old_report / "report.pdf", old_report / "report.pdf.manifest.json", "--public-key", other)


@pytest.mark.django_db
def test_report_verify_with_a_public_key_file_that_is_not_a_key_says_so(old_report, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")

    with pytest.raises(CommandError, match=r"--public-key .*junk.pem is not a PEM public key"):
        run_verify(old_report / "report.pdf", old_report / "report.pdf.manifest.json", "--public-key", junk)


@pytest.mark.django_db
def test_report_verify_of_a_missing_file_or_unreadable_manifest_is_one_clear_line(old_report, tmp_path):
    (tmp_path / "bad.json").write_text("{not json")

    with pytest.raises(CommandError, match=r"No report file at .*missing.pdf"):
        run_verify(tmp_path / "missing.pdf", old_report / "report.pdf.manifest.json")
    with pytest.raises(CommandError, match=r"The manifest .*bad.json is not readable JSON"):
        run_verify(old_report / "report.pdf", tmp_path / "bad.json")


def test_report_verify_command_exits_1_with_one_line_and_no_traceback(generated, transactional_db, settings):
    # A real child process on the test database; transactional_db empties the tables it writes to afterwards.
    _, stored, _ = generated
    flip_one_byte(stored)
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
        [sys.executable, "manage.py", "report", "verify", str(stored), f"{stored}.manifest.json"],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"CommandError: FAILED: {stored.name}: sha256 mismatch."]
    assert AuditEvent.objects.filter(action="compliance.report.verified").latest("id").outcome == "failure"
