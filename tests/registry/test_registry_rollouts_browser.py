"""A model page with a rollout in headless Chromium at 1366 and 390 px: the split, its history and the versions'
lineage fit the screen with no console error or serious axe violation, and Promote works from the page."""

import io

import pytest
from playwright.sync_api import expect

from apps.registry.services import (
    alias_move,
    alias_route,
    model_register,
    version_update,
    version_upload,
    version_validate,
)
from tests.registry_models import build_tiny_classifier, pack_zip
from tests.shell_pages import LAPTOP, PHONE, SCREENSHOTS, PageProblems, page_check

pytestmark = [
    pytest.mark.browser,
    pytest.mark.pages,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("registry_storage"),
]


@pytest.fixture
def rollout(operator_user, tmp_path):
    model = model_register(owner=operator_user, name="sentiment", task="text-classification", tags=["nlp"])
    artifact = pack_zip(build_tiny_classifier(tmp_path / "model"))
    versions = []
    for _ in range(3):
        version = version_upload(model=model, upload=io.BytesIO(artifact), actor=operator_user)
        version_validate(version_id=version.pk)
        version.refresh_from_db()
        versions.append(version)
    alias_move(model=model, name="staging", version=versions[1], actor=operator_user)
    alias_route(
        model=model,
        name="staging",
        targets=[{"version": 2, "weight": 90}, {"version": 3, "weight": 10}],
        actor=operator_user,
    )
    alias_move(model=model, name="canary-eu", version=versions[0], actor=operator_user)
    version_update(
        version=versions[2],
        actor=operator_user,
        changes={
            "tags": ["candidate", "q4", "distilled"],
            "training_dataset": "s3://datasets/tickets/2026-11@sha256:9f2c4be1",
            "source_run_url": "https://mlflow.example.com/#/experiments/3/runs/8d1e0f6a7b2c4d5e9f00a1b2c3d4e5f6",
            "parent_version": 2,
            "input_schema": {"type": "string", "minLength": 3, "maxLength": 500},
            "output_schema": {"type": "object", "required": ["label", "score"]},
        },
    )
    return model


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1366", "390"])
def test_rollout_page_fits_and_promotes(asgi_live_server, rollout, operator_user, password, viewport, chromium):
    page = chromium.new_page(viewport=viewport)
    problems = PageProblems(page)
    page.goto(f"{asgi_live_server}/registry/sentiment/")
    page.fill("#id_username", operator_user.username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{asgi_live_server}/registry/sentiment/")
    expect(page.locator('#alias-table tr[data-alias="staging"]')).to_contain_text("v2 90 % · v3 10 %")
    expect(page.locator("#alias-history-table tbody tr")).to_have_count(3)
    expect(page.locator('.version-fact[data-version="3"]')).to_contain_text("s3://datasets/tickets/2026-11")
    # The split bar (an SVG: sizes from data, no style attribute) shows 90 % stable, 10 % canary.
    bar = page.locator('#alias-table tr[data-alias="staging"] .split-bar')
    stable = bar.locator(".split-stable").bounding_box()["width"] / bar.bounding_box()["width"]
    assert stable == pytest.approx(0.9, abs=0.02)
    page.locator("#aliases").scroll_into_view_if_needed()
    page_check(page, problems, f"registry-rollout-{viewport['width']}")
    page.locator("#alias-table").screenshot(path=SCREENSHOTS / f"registry-rollout-aliases-{viewport['width']}.png")

    page.click('#alias-table tr[data-alias="staging"] button:has-text("Promote v3")')
    page.wait_for_url(f"{asgi_live_server}/registry/sentiment/#aliases")
    expect(page.locator("main")).to_contain_text("staging of sentiment promoted: v3.")
    expect(page.locator('#alias-table tr[data-alias="staging"]')).to_contain_text("v2")  # the rollback target
    expect(page.locator("#alias-history-table tbody tr").first).to_contain_text("Promoted")

    # Removing asks first: dismissed, nothing happens; accepted, the alias is gone.
    remove = page.locator('#alias-table tr[data-alias="canary-eu"] button:has-text("Remove")')
    page.once("dialog", lambda dialog: dialog.dismiss())
    remove.click()
    expect(page.locator('#alias-table tr[data-alias="canary-eu"]')).to_have_count(1)
    page.once("dialog", lambda dialog: dialog.accept())
    remove.click()
    expect(page.locator("main")).to_contain_text("canary-eu of sentiment removed.")
    expect(page.locator('#alias-table tr[data-alias="canary-eu"]')).to_have_count(0)
