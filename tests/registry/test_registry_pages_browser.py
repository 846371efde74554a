"""A model's page in headless Chromium against the real ASGI app, Redis channel layer and a Celery worker: the try-it
box, an alias move through its confirmation, and an evaluation job started from the page that completes live."""

import io
import re
import time
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from apps.registry.models import ModelVersion
from apps.registry.services import model_register, version_upload
from tests.registry_models import SENTENCES, build_tiny_classifier, pack_zip

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("registry_storage")]

# Kept after the run so that a person can look at them.
SCREENSHOT_DIR = settings.DATA_DIR / "screenshots"
# Enough rows that the job is still running when the page comes back from starting it (thousands per second here).
JOB_ROWS = 30_000

# Records every status each job row shows, in order, and whether the page was reloaded. Test instrumentation only.
RECORDER = """
window.__statuses = {};
document.addEventListener("DOMContentLoaded", () => {
  const body = document.getElementById("job-rows");
  if (!body) return;
  const record = (row) => {
    const seen = (window.__statuses[row.dataset.jobId] = window.__statuses[row.dataset.jobId] || []);
    if (seen[seen.length - 1] !== row.dataset.status) seen.push(row.dataset.status);
  };
  body.querySelectorAll("tr").forEach(record);
  new MutationObserver((changes) => changes.forEach((change) => record(change.target)))
    .observe(body, { subtree: true, attributes: true, attributeFilter: ["data-status"] });
});
"""


@pytest.fixture
def sentiment_versions(celery_worker, operator_user, tmp_path) -> list[ModelVersion]:
    """Two versions of "sentiment" uploaded through the service and validated by the worker."""
    model = model_register(owner=operator_user, name="sentiment", task="text-classification", tags=["nlp"])
    artifact = pack_zip(build_tiny_classifier(tmp_path / "model"))
    versions = [version_upload(model=model, upload=io.BytesIO(artifact), actor=operator_user) for _ in range(2)]
    deadline = time.monotonic() + 60
    for version in versions:
        while version.status == "validating" and time.monotonic() < deadline:
            time.sleep(0.05)
            version.refresh_from_db()
        assert version.status == "ready", version.status_reason
    return versions


def _evaluation_csv(rows: int) -> bytes:
    labels = ("negative", "positive")
    lines = [f"{SENTENCES[index % len(SENTENCES)]} {index},{labels[index % 2]}" for index in range(rows)]
    return ("text,label\n" + "\n".join(lines) + "\n").encode()


def _screenshot(page, name: str, width: int) -> None:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(Path(SCREENSHOT_DIR) / f"registry-{name}-{width}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{name} scrolls sideways at {width} px"


@pytest.mark.parametrize(("width", "height"), [(1366, 900), (390, 844)])
def test_try_it_alias_move_and_an_evaluation_job_completing_live(
    asgi_live_server, sentiment_versions, operator_user, password, width, height, chromium
):
    page = chromium.new_page(viewport={"width": width, "height": height})
    page.add_init_script(RECORDER)
    page.goto(f"{asgi_live_server}/registry/sentiment/")
    page.fill("#id_username", operator_user.username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{asgi_live_server}/registry/sentiment/")
    expect(page.locator("#version-table tbody tr")).to_have_count(2)
    expect(page.locator("#model-card h1")).to_have_text("Tiny sentiment classifier")

    # An alias, through the confirmation page.
    page.select_option("#id_version", "1")
    page.fill("#id_alias", "staging")
    page.click("#alias-move-form button[type=submit]")
    expect(page.locator("#alias-move-confirm h1")).to_have_text("Move the alias staging?")
    _screenshot(page, "alias-confirm", width)
    page.click("#alias-move-confirm-button")
    page.wait_for_url(f"{asgi_live_server}/registry/sentiment/#aliases")
    expect(page.locator("main")).to_contain_text("staging of sentiment now points at v1.")
    expect(page.locator('#alias-table tr[data-alias="staging"]')).to_contain_text("v1")

    # Try it: the API's own refusal for too many inputs, then a prediction.
    page.fill("#try-it-texts", "\n".join(f"text {index}" for index in range(65)))
    page.click("#try-it-form button[type=submit]")
    expect(page.locator("#try-it-error")).to_have_text(
        "65 inputs; a synchronous prediction takes at most 64. Use an inference job for more."
    )
    page.fill("#try-it-texts", "the service is great and fast\nthe queue is stuck again")
    page.select_option("#try-it-target", "alias:staging")
    page.click("#try-it-form button[type=submit]")
    expect(page.locator("#try-it-answered")).to_have_text("Answered by v1 (alias staging).")
    outputs = page.locator("#try-it-outputs tbody tr")
    expect(outputs).to_have_count(2)
    expect(outputs.first.locator("td").nth(1)).to_have_text(re.compile(r"^(negative|positive)$"))
    expect(outputs.first.locator("td").nth(2)).to_have_text(re.compile(r"^0\.\d{3}$"))
    expect(page.locator("#try-it-error")).to_be_hidden()

    # An evaluation job started from the page: its row follows the worker without a reload.
    page.set_input_files("#id_file", {"name": "rows.csv", "mimeType": "text/csv", "buffer": _evaluation_csv(JOB_ROWS)})
    page.select_option("#id_target", "version:2")
    page.click("#job-form button[type=submit]")
    page.wait_for_url(f"{asgi_live_server}/registry/sentiment/#jobs")
    page.evaluate("window.__sameDocument = true")
    row = page.locator("#job-rows tr").first
    expect(row.locator('[data-cell="status"] .pill')).to_have_text("completed", timeout=120_000)
    expect(row.locator('[data-cell="rows"]')).to_have_text(f"{JOB_ROWS:,} / {JOB_ROWS:,}")
    expect(row.locator('[data-cell="result"] a')).to_have_text("Download")
    job_id = row.get_attribute("data-job-id")
    statuses = page.evaluate(f"window.__statuses['{job_id}']")
    assert statuses[0] in ("queued", "running"), statuses
    assert statuses[-1] == "completed"
    assert page.evaluate("window.__sameDocument") is True  # no reload happened

    with page.expect_download() as download:
        row.locator('[data-cell="result"] a').click()
    assert download.value.suggested_filename == f"inference-job-{job_id}-results.csv"

    # The finished evaluation's figures are on the version once the page is loaded again.
    page.goto(f"{asgi_live_server}/registry/sentiment/?a=1&b=2#compare")
    accuracy = page.locator('#version-table tr[data-version="2"] td').nth(5)
    expect(accuracy).to_have_text(re.compile(r"^[01]\.\d{3}$"))
    _screenshot(page, "model", width)
    page.goto(f"{asgi_live_server}/registry/")
    expect(page.locator('#model-table tr[data-model="sentiment"]')).to_contain_text("staging → v1")
    _screenshot(page, "list", width)
    page.close()
