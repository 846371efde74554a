"""The `opsdeck` command, run as a subprocess from the virtualenv, against a running portal (`runportal`, web only)
and a real Celery worker on PostgreSQL and Redis: jobs and sweeps end to end, the live stream, reports downloaded
and verified offline, models, backups, and the one-line errors."""

import io
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import Client as DjangoClient

from apps.accounts.tokens import token_create
from apps.backups.models import Backup
from apps.compliance.choices import ReportFormat, ReportKind
from apps.compliance.services import previous_month, report_request
from apps.quantum.models import QuantumJob
from apps.registry.services import alias_move, model_register, version_upload
from tests.helpers import PROJECT_DIR, PortalProcess, WorkerProcess, child_database_url, job_wait
from tests.mfa import sudo_force_login, totp_device_create
from tests.quantum_circuits import ghz_qasm2, rotation_qasm3
from tests.registry_models import build_tiny_classifier, pack_zip

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
OPSDECK = str(Path(sys.executable).parent / "opsdeck")
README = PROJECT_DIR / "README.md"


@pytest.fixture
def portal(transactional_db, tmp_path, settings):
    """runportal and a worker sharing the test database, Redis, keys and folders with this process."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.REGISTRY_DIR = tmp_path / "registry"
    shared = {
        "SECRET_KEY": settings.SECRET_KEY,
        "AUDIT_SIGNING_KEY": settings.AUDIT_SIGNING_KEY,
        "REPORT_SIGNING_KEY": settings.REPORT_SIGNING_KEY,
        "BACKUP_ENCRYPTION_KEY": settings.BACKUP_ENCRYPTION_KEY,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "REGISTRY_DIR": str(settings.REGISTRY_DIR),
        "BACKUP_DIR": str(tmp_path / "backups"),
        "HF_HUB_OFFLINE": "1",
    }
    # The test settings, as the worker's: the live stream's channel names carry the test's Redis database.
    web = PortalProcess(
        tmp_path / "web",
        DJANGO_SETTINGS_MODULE="project.settings.test",
        TEST_DATABASE_URL=child_database_url(),
        TEST_REDIS_URL=settings.REDIS_URL,
        **shared,
    )
    worker = WorkerProcess("client", tmp_path, **shared)
    try:
        web.start()
        yield web
    finally:
        web.kill()
        worker.stop()


def _token(user, *scopes: str) -> str:
    return token_create(owner=user, name="script", scopes=list(scopes or ("read", "write")), expires_in_days=1).secret


def opsdeck(portal, token: str, *args: str, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "OPSDECK_URL": portal.url, "OPSDECK_TOKEN": token, **extra}
    return subprocess.run(
        [OPSDECK, *args], env=environment, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_cli_runs_a_job_and_a_sweep_end_to_end_and_streams_their_status(portal, operator_user, viewer_user, tmp_path):
    token = _token(operator_user)
    circuit = tmp_path / "ghz.qasm"
    circuit.write_text(ghz_qasm2(3))
    # Every job the operator may see, live, from before the first submission.
    environment = {**os.environ, "OPSDECK_URL": portal.url, "OPSDECK_TOKEN": token}
    watcher = subprocess.Popen(
        [OPSDECK, "--json", "jobs", "watch"], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(1)  # subscribed before the job exists
        ran = opsdeck(portal, token, "jobs", "submit", str(circuit), "--shots", "500", "--seed", "7", "--wait")
        assert ran.returncode == 0, ran.stderr
        job = QuantumJob.objects.get()
        assert (job.status, job.shots, job.owner) == ("completed", 500, operator_user)
        lines = ran.stdout.splitlines()
        assert lines[0] == f"quantum job {job.pk} completed"
        counts = json.loads(lines[1].removeprefix("counts: "))
        assert counts == job.counts
        assert set(counts) == {"000", "111"}
        assert sum(counts.values()) == 500
        # The progress bar on stderr ends full, on the final status.
        assert f"submitted quantum job {job.pk}" in ran.stderr
        assert f"quantum job {job.pk}: 100%" in ran.stderr
        assert "completed" in ran.stderr.rsplit("\r", 1)[-1]
        assert "Traceback" not in ran.stderr
    finally:
        watcher.terminate()
        streamed, _ = watcher.communicate(timeout=10)
    updates = [json.loads(line) for line in streamed.splitlines()]
    statuses = [update["status"] for update in updates if (update["kind"], update["id"]) == ("quantum", job.pk)]
    assert statuses[0] == "queued"
    assert statuses[-1] == "completed"
    assert "running" in statuses

    # The result downloads to a file.
    saved = tmp_path / "result.json"
    result = opsdeck(portal, token, "jobs", "result", str(job.pk), "-o", str(saved))
    assert result.returncode == 0, result.stderr
    assert json.loads(saved.read_text())["counts"] == counts

    # A sweep: one run per parameter set, results in the order given.
    sweep = tmp_path / "params.json"
    sweep.write_text(json.dumps([{"theta": 0.0}, {"theta": math.pi}]))
    rotation = tmp_path / "rotation.qasm"
    rotation.write_text(rotation_qasm3())
    swept = opsdeck(
        portal, token, "--json", "jobs", "submit", str(rotation), "--sweep", str(sweep), "--shots", "100", "--wait"
    )
    assert swept.returncode == 0, swept.stderr
    outcome = json.loads(swept.stdout)
    assert outcome["status"] == "completed"
    assert [entry["parameters"] for entry in outcome["results"]] == [{"theta": 0.0}, {"theta": math.pi}]
    assert [entry["counts"] for entry in outcome["results"]] == [{"0": 100}, {"1": 100}]

    # The README's library example, as written.
    example = re.search(
        r"```python\n(from pathlib import Path\n\nfrom opsdeck_client import.*?)```",
        README.read_text(),
        flags=re.DOTALL,
    )
    environment = {**os.environ, "OPSDECK_URL": portal.url, "OPSDECK_TOKEN": token}
    ran = subprocess.run(
        [sys.executable, "-c", example.group(1)], cwd=tmp_path, env=environment, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[-1] == json.dumps(QuantumJob.objects.latest("id").counts).replace('"', "'")

    # Watching one finished job: its state at once, exit 0.
    watched = opsdeck(portal, token, "jobs", "watch", str(job.pk))
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout == f"quantum #{job.pk} completed\n"

    # A bad token: one line naming the problem, exit 1, on the API and on the stream.
    bad_token = "odk_00000000_not-a-real-token"
    refused = opsdeck(portal, bad_token, "jobs", "list")
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == "opsdeck: error: Invalid token. (HTTP 401 authentication_failed)\n"
    refused = opsdeck(portal, bad_token, "jobs", "watch", str(job.pk))
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == (
        f"opsdeck: error: The portal refused the live stream /ws/jobs/quantum/{job.pk}/ (HTTP 403): a bad, expired "
        "or revoked token, or a job that does not exist or is not yours to see.\n"
    )

    # A viewer may not submit: the API's reason, exit 1, nothing queued.
    viewer = opsdeck(portal, _token(viewer_user, "read", "write"), "jobs", "submit", str(circuit))
    assert viewer.returncode == 1
    assert viewer.stderr == (
        "opsdeck: error: Only operators and administrators may submit quantum jobs. (HTTP 403 permission_denied)\n"
    )
    assert QuantumJob.objects.count() == 3


def test_cli_downloads_a_report_that_verifies_offline_and_a_tampered_copy_does_not(portal, compliance_user, tmp_path):
    totp_device_create(compliance_user)
    token = _token(compliance_user, "read")
    start, end = previous_month()
    report = report_request(
        kind=ReportKind.ACCESS_REVIEW, fmt=ReportFormat.CSV, period_start=start, period_end=end, actor=compliance_user
    )
    job_wait(report, {"completed", "failed"})
    assert report.status == "completed", report.error

    listed = opsdeck(portal, token, "--json", "reports", "list")
    assert listed.returncode == 0, listed.stderr
    assert [entry["id"] for entry in json.loads(listed.stdout)] == [report.pk]

    # Tokens never take report files out: the portal's reason, in one line.
    target = tmp_path / "access-review.csv"
    refused = opsdeck(portal, token, "reports", "download", str(report.pk), "-o", str(target))
    assert refused.returncode == 2
    assert refused.stderr.startswith("opsdeck: error: This needs a browser session that re-authenticated")
    assert not target.exists()

    # A browser session that confirmed a fresh authenticator code may.
    browser = DjangoClient()
    sudo_force_login(browser, compliance_user)
    session = browser.cookies["sessionid"].value
    downloaded = opsdeck(
        portal, token, "reports", "download", str(report.pk), "-o", str(target), OPSDECK_SESSION=session
    )
    assert downloaded.returncode == 0, downloaded.stderr
    report.refresh_from_db()
    assert target.read_bytes() == report.file.open("rb").read()
    manifest = json.loads((tmp_path / "access-review.csv.manifest.json").read_text())
    assert manifest["sha256"] == report.sha256

    # The public key saved once; verifying needs nothing else (no portal address, no token).
    key = tmp_path / "opsdeck.pub.pem"
    assert opsdeck(portal, "", "reports", "public-key", "-o", str(key)).returncode == 0
    offline = {"OPSDECK_URL": "", "OPSDECK_TOKEN": ""}
    verified = opsdeck(portal, "", "reports", "verify", str(target), "--key", str(key), **offline)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout == f"OK: access-review.csv matches its signed manifest (key {report.key_fingerprint}).\n"
    # Against the key the portal publishes, too.
    assert opsdeck(portal, "", "reports", "verify", str(target)).returncode == 0

    # One changed byte: exit 3 and what failed.
    data = bytearray(target.read_bytes())
    data[-2] ^= 0x01
    tampered = tmp_path / "tampered.csv"
    tampered.write_bytes(bytes(data))
    failed = opsdeck(
        portal,
        "",
        "reports",
        "verify",
        str(tampered),
        "--manifest",
        str(tmp_path / "access-review.csv.manifest.json"),
        "--key",
        str(key),
        **offline,
    )
    assert failed.returncode == 3
    assert failed.stderr == "opsdeck: error: tampered.csv does not verify: sha256 mismatch\n"
    # A manifest that claims another hash no longer carries a valid signature.
    forged = {**manifest, "sha256": report.sha256.replace(report.sha256[0], "0" if report.sha256[0] != "0" else "1")}
    forged_path = tmp_path / "forged.manifest.json"
    forged_path.write_text(json.dumps(forged))
    failed = opsdeck(
        portal, "", "reports", "verify", str(target), "--manifest", str(forged_path), "--key", str(key), **offline
    )
    assert failed.returncode == 3
    assert failed.stderr.endswith("does not verify: sha256 mismatch; signature does not verify\n")


def test_cli_lists_models_and_predicts_with_an_alias(portal, operator_user, tmp_path):
    model = model_register(owner=operator_user, name="sentiment", task="text-classification")
    archive = pack_zip(build_tiny_classifier(tmp_path / "classifier"))
    version = version_upload(model=model, upload=io.BytesIO(archive), actor=operator_user)
    job_wait(version, {"ready", "invalid"})
    assert version.status == "ready", version.status_reason
    alias_move(model=model, name="staging", version=version, actor=operator_user)
    token = _token(operator_user)

    listed = opsdeck(portal, token, "models", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == "sentiment\ttext-classification\tlatest v1\tstaging=v1\n"

    predicted = opsdeck(portal, token, "--json", "models", "predict", "sentiment:staging", "good day", "bad day")
    assert predicted.returncode == 0, predicted.stderr
    answer = json.loads(predicted.stdout)
    assert (answer["model"], answer["version"], answer["alias"]) == ("sentiment", 1, "staging")
    assert len(answer["outputs"]) == 2
    assert {output["label"] for output in answer["outputs"]} <= {"negative", "positive"}

    missing = opsdeck(portal, token, "models", "predict", "sentiment:nope", "good day")
    assert missing.returncode == 1
    assert missing.stderr.startswith("opsdeck: error: ")
    assert missing.stderr.endswith("(HTTP 404 not_found)\n")


def test_cli_takes_a_backup_and_waits_for_it(portal, admin_user, operator_user):
    totp_device_create(admin_user)
    taken = opsdeck(portal, _token(admin_user), "--json", "backups", "create", "--wait", timeout=240)
    assert taken.returncode == 0, taken.stderr
    job = json.loads(taken.stdout)
    backup = Backup.objects.get()
    assert (job["status"], job["backup"]["id"], backup.status) == ("completed", backup.pk, "completed")
    assert f"backup job {job['id']}: 100%" in taken.stderr

    refused = opsdeck(portal, _token(operator_user), "backups", "create")
    assert refused.returncode == 1
    assert refused.stderr == (
        "opsdeck: error: Only administrators may create, verify or download backups. (HTTP 403 permission_denied)\n"
    )
    assert Backup.objects.count() == 1
