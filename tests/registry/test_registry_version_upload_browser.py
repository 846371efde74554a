"""Registering a model and uploading its first version from the portal, in headless Chromium against the real ASGI
app, Redis channel layer and a Celery worker: a refused archive shows its reason on the form, a good one lands as
"validating" and turns "ready" live, after which the page offers the version to try."""

import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.browser_sockets import SOCKET_OPEN, SOCKET_RECORDER
from tests.helpers import AXE_SERIOUS, axe_add
from tests.registry_models import build_tiny_classifier, pack_zip
from tests.workers import worker_running

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("registry_storage")]

SCREENSHOT_DIR = settings.DATA_DIR / "screenshots"


def _screenshot(page, name: str, width: int) -> None:
    """A screenshot to look at; the page must not scroll sideways nor have a serious or critical axe-core violation."""
    axe_add(page)
    assert page.evaluate(AXE_SERIOUS) == [], name
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / f"registry-{name}-{width}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{name} scrolls sideways at {width} px"


def _archive(name: str, content: bytes) -> dict:
    return {"name": name, "mimeType": "application/zip", "buffer": content}


@pytest.mark.parametrize(("width", "height"), [(1366, 900), (390, 844)])
def test_operator_registers_a_model_uploads_a_version_and_sees_it_validated_live(
    asgi_live_server, operator_user, password, tmp_path, width, height, chromium
):
    artifact = pack_zip(build_tiny_classifier(tmp_path / "model"))
    page = chromium.new_page(viewport={"width": width, "height": height})
    page.add_init_script(SOCKET_RECORDER)
    script_errors = []
    page.on("pageerror", lambda error: script_errors.append(error.stack))
    page.goto(f"{asgi_live_server}/registry/")
    page.fill("#id_username", operator_user.username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{asgi_live_server}/registry/")

    page.fill("#id_name", "intent")
    page.select_option("#id_task", "text-classification")
    page.fill("#id_description", "Routes support tickets to a team.")
    page.click("#register button[type=submit]")
    page.wait_for_url(f"{asgi_live_server}/registry/intent/")
    expect(page.locator("#no-versions")).to_be_visible()
    expect(page.locator("#version-upload-form .field-artifact .help")).to_contain_text("at most 1,024 MB")
    _screenshot(page, "upload-empty", width)

    # Not an archive: the reason is on the form and nothing is kept.
    page.set_input_files("#id_artifact", _archive("model.zip", b"not a zip at all"))
    page.click("#version-upload-form button[type=submit]")
    expect(page.locator("#id_artifact-errors")).to_have_text("The upload is not a .zip or .tar.gz archive.")
    expect(page.locator("#no-versions")).to_be_visible()
    _screenshot(page, "upload-refused", width)

    # A good archive while no worker runs: the page shows it validating, then follows the worker's verdict.
    page.set_input_files("#id_artifact", _archive("intent.zip", artifact))
    page.click("#version-upload-form button[type=submit]")
    page.wait_for_url(f"{asgi_live_server}/registry/intent/#versions")
    expect(page.locator("main")).to_contain_text("Uploaded v1 of intent; it is being validated (see below).")
    status = page.locator('#version-table tr[data-version="1"] [data-cell="version-status"] .pill')
    expect(status).to_have_text("validating")
    expect(page.locator("#try-it")).to_contain_text("Nothing to run yet")
    page.wait_for_function(SOCKET_OPEN)
    page.evaluate("window.__sameDocument = true")
    _screenshot(page, "upload-validating", width)
    with worker_running():
        expect(status).to_have_text("ready", timeout=60_000)
    assert page.evaluate("window.__sameDocument") is True  # live, not reloaded
    assert page.evaluate("window.__sockets.length") == 1
    expect(page.locator("#version-ready")).to_contain_text("v1 is ready: reload the page to try it")
    _screenshot(page, "upload-ready", width)

    page.click("#version-ready-reload")
    page.fill("#try-it-texts", "the service is great and fast")
    page.click("#try-it-form button[type=submit]")
    expect(page.locator("#try-it-answered")).to_have_text("Answered by v1.")
    expect(page.locator("#try-it-outputs tbody tr")).to_have_count(1)
    assert script_errors == [], "\n".join(script_errors)
    page.close()
