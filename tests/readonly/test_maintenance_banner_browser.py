"""The maintenance banner in Chromium at 1366 and 390 px: on the portal's pages, the sign-in page and the admin,
while maintenance is on and a day before a planned window; and the page a refused form post gets."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from apps.readonly.services import maintenance_mode_enable, maintenance_window_schedule
from tests.mfa import sudo_force_login
from tests.shell_pages import LAPTOP, PHONE, PageProblems, page_check, session_of

pytestmark = [pytest.mark.browser, pytest.mark.pages, pytest.mark.django_db(transaction=True)]

MESSAGE = "Upgrading the database to PostgreSQL 16; jobs wait and start again afterwards."


@pytest.fixture
def maintenance_on(transactional_db):
    maintenance_mode_enable(message=MESSAGE, until=timezone.now() + timedelta(hours=2))


@pytest.fixture
def planned_window(transactional_db):
    now = timezone.now()
    maintenance_window_schedule(
        starts_at=now + timedelta(hours=3), ends_at=now + timedelta(hours=4), message="Network switch replacement."
    )


@pytest.fixture
def admin_session(roles, admin_user) -> str:
    """Inside the sudo window, which the token form asks for."""
    client = Client()
    sudo_force_login(client, admin_user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.fixture
def operator_session(roles, operator_user) -> str:
    return session_of(operator_user, second_factor=True)


def _banner(page):
    banner = page.locator("#maintenance-banner")
    assert banner.count() == 1
    assert banner.get_attribute("role") == "status"
    return banner.inner_text()


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_the_banner_shows_the_message_and_the_end_in_local_time_on_every_kind_of_page(
    asgi_live_server, admin_session, maintenance_on, viewport, chromium
):
    width = viewport["width"]

    context = chromium.new_context(viewport=viewport, timezone_id="Asia/Tokyo")
    page = context.new_page()
    problems = PageProblems(page)
    page.goto(asgi_live_server + "/accounts/login/")
    text = _banner(page)
    assert "Maintenance mode: changes are paused." in text
    assert MESSAGE in text
    assert "GMT+9" in text  # the end, rewritten into the viewer's zone like every date on the portal
    page_check(page, problems, f"maintenance-login-{width}")

    context.add_cookies([{"name": "sessionid", "value": admin_session, "url": asgi_live_server}])
    pages = [
        ("dashboard", "/dashboard/"),
        ("account", "/account/"),
        ("admin", "/admin/"),
        ("admin-switch", "/admin/readonly/maintenancemode/"),
        ("admin-windows", "/admin/readonly/maintenancewindow/"),
        ("admin-window-add", "/admin/readonly/maintenancewindow/add/"),
    ]
    for name, path in pages:
        page = context.new_page()
        problems = PageProblems(page)
        page.goto(asgi_live_server + path)
        assert MESSAGE in _banner(page), path
        page_check(page, problems, f"maintenance-{name}-{width}")

    # A form sent during maintenance gets the maintenance page: nothing changed, the message, when to try again.
    page = context.new_page()
    problems = PageProblems(page)
    page.goto(asgi_live_server + "/account/tokens/new/")
    page.fill("#id_name", "deploy script")
    with page.expect_response(lambda response: response.request.method == "POST") as posted:
        page.click("main button[type=submit]")
    assert posted.value.status == 503
    assert posted.value.headers["retry-after"].isdigit()
    assert page.locator("h1").first.inner_text() == "Maintenance in progress"
    assert "Nothing was changed" in page.locator("main").inner_text()
    # The refusal itself is expected (its response and Chromium's console line about it); nothing else.
    problems.items.remove(f"503 {asgi_live_server}/account/tokens/new/")
    problems.items.remove(
        "console: Failed to load resource: the server responded with a status of 503 (Service Unavailable)"
    )
    page_check(page, problems, f"maintenance-refused-{width}")
    context.close()


def test_a_planned_window_is_announced_a_day_ahead(asgi_live_server, operator_session, planned_window, chromium):
    context = chromium.new_context(viewport=PHONE)
    context.add_cookies([{"name": "sessionid", "value": operator_session, "url": asgi_live_server}])
    page = context.new_page()
    problems = PageProblems(page)
    page.goto(asgi_live_server + "/account/")
    text = _banner(page)
    assert "Maintenance planned from" in text
    assert "Network switch replacement." in text
    page_check(page, problems, "maintenance-planned-390")
    context.close()
