"""The API docs page works offline in a real browser: Swagger UI comes from the portal itself."""

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


def test_api_docs_render_from_local_assets_only(live_server, operator_user, password, chromium):
    portal_host = urlsplit(live_server.url).netloc
    outside_requests = []
    page = chromium.new_page(viewport={"width": 1366, "height": 900})

    def only_local(route):
        if urlsplit(route.request.url).netloc == portal_host:
            route.continue_()
        else:
            outside_requests.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.goto(live_server.url + "/api/v1/docs/")
    page.wait_for_url("**/accounts/login/?next=/api/v1/docs/")
    page.fill("#id_username", operator_user.username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/api/v1/docs/")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    assert "Opsdeck API" in page.locator(".swagger-ui .info .title").inner_text()
    assert page.locator(".opblock-summary-path", has_text="/api/v1/accounts/me/").count() == 1
    assert outside_requests == []
    # Inside the portal's shell: the sidebar is there to go back, with the docs marked as the current page.
    assert page.locator("#nav-sidebar-apps a[aria-current=page]").inner_text().endswith("API docs")
    assert page.locator("#nav-sidebar-apps a", has_text="Dashboard").count() == 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "operator-api-docs-1366.png")
    page.close()


def test_api_docs_fit_a_phone_screen(live_server, operator_user, password, chromium):
    page = chromium.new_page(viewport={"width": 390, "height": 844})
    page.goto(live_server.url + "/api/v1/docs/")
    page.fill("#id_username", operator_user.username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_selector(".swagger-ui .opblock-summary-path", timeout=20_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "operator-api-docs-390.png", full_page=False)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the API docs scroll sideways by {overflow} px"
    page.close()
