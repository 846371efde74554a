"""The API docs page works offline in a real browser: Swagger UI comes from the portal itself."""

from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_api_docs_render_from_local_assets_only(live_server, operator_user, password, chromium):
    portal_host = urlsplit(live_server.url).netloc
    outside_requests = []
    page = chromium.new_page()

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
    page.close()
