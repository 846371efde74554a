"""The drift watch on a model's page in headless Chromium: a calm and a drifting version behind their aliases, each
with its badge and its charts, readable at laptop and phone width (screenshots to look at, axe-core, no sideways
scroll)."""

import re

import pytest
from django.conf import settings
from playwright.sync_api import expect

from apps.registry.drift import drift_check
from apps.registry.services import alias_move, model_register
from tests.helpers import AXE_SERIOUS, axe_add
from tests.registry.test_registry_drift import LABELS, _evaluate, _everyday, _predict_all, _version, _very_long
from tests.registry_models import build_tiny_classifier
from tests.shell_pages import session_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("registry_storage")]

SCREENSHOT_DIR = settings.DATA_DIR / "screenshots"


@pytest.fixture
def watched_model(operator_user, admin_user, tmp_path):
    """sentiment v1 (staging, predictions like its evaluation), v2 (production, pasted documents instead of
    tickets) and v3 (canary, never evaluated), checked once."""
    model = model_register(owner=operator_user, name="sentiment", task="text-classification")
    folder = build_tiny_classifier(tmp_path / "model", labels=LABELS)
    steady, shifted, fresh = (_version(model, folder, operator_user) for _ in range(3))
    for version in (steady, shifted):
        _evaluate(operator_user, model, version, _everyday(300, seed=version.version))
    alias_move(model=model, name="staging", version=steady, actor=operator_user)
    alias_move(model=model, name="production", version=shifted, actor=admin_user)
    alias_move(model=model, name="canary", version=fresh, actor=operator_user)
    _predict_all(model, "staging", _everyday(200, seed=30), operator_user)
    _predict_all(model, "production", _everyday(40, seed=31) + _very_long(160, seed=32), operator_user)
    _predict_all(model, "canary", _everyday(20, seed=33), operator_user)
    drift_check()
    return model


@pytest.fixture
def operator_session(operator_user) -> str:
    return session_of(operator_user, second_factor=False)  # before the browser's event loop starts


@pytest.mark.parametrize(("width", "height"), [(1366, 900), (390, 844)])
def test_model_page_shows_each_watched_versions_badge_and_charts(
    asgi_live_server, watched_model, operator_session, width, height, chromium
):
    cookie = operator_session
    context = chromium.new_context(viewport={"width": width, "height": height})
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": asgi_live_server}])
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(f"{asgi_live_server}/registry/sentiment/#drift")

    drift = page.locator("#drift")
    expect(drift.locator("h2")).to_have_text("Drift watch")
    expect(drift.locator(".drift-version")).to_have_count(3)
    expect(drift.locator('[data-version="2"] [data-drift-badge]')).to_have_text(re.compile(r"^Drift · PSI \d+\.\d\d$"))
    expect(drift.locator('[data-version="1"] [data-drift-badge]')).to_have_text(re.compile(r"^No drift · PSI 0\.0\d$"))
    expect(drift.locator('[data-version="3"] [data-drift-badge]')).to_have_text("No reference")
    expect(drift.locator('[data-version="2"] svg.drift-chart')).to_have_count(2)
    chart = drift.locator('[data-version="2"] [data-feature="input_length"] svg')
    box = chart.bounding_box()
    assert box["width"] <= width - 40, box
    assert box["height"] > 100, box
    axe_add(page)
    assert page.evaluate(AXE_SERIOUS) == []
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    drift.screenshot(path=str(SCREENSHOT_DIR / f"registry-drift-{width}.png"))
    page.screenshot(path=str(SCREENSHOT_DIR / f"registry-drift-page-{width}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= width, f"scrolls sideways at {width} px"
    assert errors == []
    context.close()
