"""While maintenance mode is on, the portal's create/submit forms (quantum submit, registry register/upload/
predict/start job, backups "back up now", compliance "new report") render their submit button disabled with a line
saying until when changes are paused, in Chromium at 1366 and 390 px; sign-out and the maintenance switch stay
enabled, and the buttons come back once maintenance ends."""

import io
import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from apps.readonly.services import maintenance_mode_disable, maintenance_mode_enable
from apps.registry.services import model_register, version_upload
from tests.helpers import job_wait
from tests.mfa import sudo_force_login
from tests.registry_models import build_tiny_classifier, pack_zip
from tests.shell_pages import LAPTOP, PHONE, PageProblems, page_check

pytestmark = [pytest.mark.browser, pytest.mark.pages, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

# Each page and the labels of the submit buttons it pauses.
PAGES = [
    ("quantum", "/dashboard/", ["Submit job"]),
    ("registry-list", "/registry/", ["Register model"]),
    ("registry-model", "/registry/sentiment/", ["Upload version", "Predict", "Start job"]),
    ("backups", "/backups/", ["Back up now"]),
    ("compliance", "/compliance/", ["Generate"]),
]


@pytest.fixture
def ready_model(celery_worker, registry_storage, admin_user, tmp_path):
    """A model with a ready version (so the predict and job forms show), checked by a real worker before
    maintenance starts (during it the check would be held)."""
    model = model_register(owner=admin_user, name="sentiment", task="text-classification")
    archive = pack_zip(build_tiny_classifier(tmp_path / "classifier"))
    version = version_upload(model=model, upload=io.BytesIO(archive), actor=admin_user)
    job_wait(version, {"ready", "invalid"}, timeout=120)
    assert version.status == "ready", version.status_reason
    return model


@pytest.fixture
def admin_session(roles, admin_user, ready_model) -> str:
    client = Client()
    sudo_force_login(client, admin_user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _in_thread(function) -> None:
    """Run a database call off Playwright's event-loop thread, where Django refuses it."""
    thread = threading.Thread(target=function)
    thread.start()
    thread.join()


def _submit_buttons(page, label: str):
    return page.locator("main button[type=submit]", has_text=label)


def test_create_forms_are_paused_during_maintenance_and_come_back_after(
    asgi_live_server, admin_session, ready_model, chromium
):
    until = timezone.now() + timedelta(hours=2)
    _in_thread(lambda: maintenance_mode_enable(message="Upgrade.", until=until, via="test"))
    for viewport in (LAPTOP, PHONE):
        context = chromium.new_context(viewport=viewport, timezone_id="UTC")
        context.add_cookies([{"name": "sessionid", "value": admin_session, "url": asgi_live_server}])
        for name, path, labels in PAGES:
            page = context.new_page()
            problems = PageProblems(page)
            page.goto(asgi_live_server + path)
            for label in labels:
                button = _submit_buttons(page, label)
                assert button.count() == 1, (path, label)
                assert button.is_disabled(), (path, label)
                note = page.locator("#" + button.get_attribute("aria-describedby"))
                assert note.inner_text() == (
                    f"Maintenance mode: changes are paused until {until.strftime('%-d %b %Y, %H:%M')} UTC."
                ), (path, label)
            # Nothing else is paused: the sign-out button and the page's other controls stay usable.
            assert page.locator("button[data-maintenance-paused]").count() == len(labels)
            page_check(page, problems, f"paused-{name}-{viewport['width']}")
            page.close()
        # The maintenance switch itself is not paused (administrators turn it off from there).
        page = context.new_page()
        page.goto(asgi_live_server + "/admin/readonly/maintenancemode/")
        assert page.locator("button[data-maintenance-paused]").count() == 0
        assert page.locator("form button[type=submit]:disabled").count() == 0
        page.close()
        context.close()

    _in_thread(lambda: maintenance_mode_disable(via="test"))
    context = chromium.new_context(viewport=PHONE)
    context.add_cookies([{"name": "sessionid", "value": admin_session, "url": asgi_live_server}])
    page = context.new_page()
    page.goto(asgi_live_server + "/dashboard/")
    assert _submit_buttons(page, "Submit job").is_enabled()
    assert page.locator(".maintenance-paused").count() == 0
    context.close()
