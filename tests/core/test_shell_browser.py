"""The pages of the portal's shell in headless Chromium, for each role, on a laptop and on a phone.

Every page is checked the same way: it fits a 390 px wide screen without scrolling sideways, logs no console
error, loads every asset (no 404 favicon), has no serious or critical axe-core violation, and its sidebar holds
exactly the areas the role may use, the current one marked. Screenshots land in var/screenshots/ to be looked at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect

from apps.quantum.services import JobSpec, job_submit
from tests.helpers import AXE, AXE_SERIOUS
from tests.mfa import otp_force_login, totp_device_create
from tests.quantum_circuits import ghz_qasm2

pytestmark = [pytest.mark.browser, pytest.mark.pages, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
# A link's title, without its icon's ligature (hidden from screen readers too).
LINK_TEXTS = """(selector) => [...document.querySelectorAll(selector)]
  .map((link) => link.querySelector("span:not([aria-hidden])").textContent.trim())"""
SIDEBAR_LINKS = "#nav-sidebar-apps a"
CURRENT_LINK = "#nav-sidebar-apps a[aria-current=page]"

YOU = ["Account", "API docs"]
NAVIGATION = {
    "admin": [
        "Dashboard",
        "Quantum jobs",
        "Registry",
        "Backups",
        "Compliance",
        "System",
        "Audit",
        "Administration",
        *YOU,
    ],
    "operator": ["Dashboard", "Quantum jobs", "Registry", *YOU],
    "viewer": ["Dashboard", "Quantum jobs", "Registry", *YOU],
    "compliance": ["Dashboard", "Registry", "Backups", "Compliance", *YOU],
}


@dataclass
class Visitor:
    """A signed-in browser session of one role, and the pages to check as that role (path, current nav link)."""

    role: str
    session: str
    pages: list[tuple[str, str, str | None]] = field(default_factory=list)


def _session(user, *, second_factor: bool) -> str:
    client = Client()
    if second_factor:
        otp_force_login(client, user)
    else:
        client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.fixture
def visitors(roles, admin_user, operator_user, viewer_user, compliance_user) -> list[Visitor]:
    """Sessions made before the browser starts (Playwright's event loop then keeps Django off the database)."""
    job = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(), name="GHZ-5"))
    job_page = f"/dashboard/jobs/{job.pk}/"
    return [
        Visitor(
            "admin",
            _session(admin_user, second_factor=True),
            [
                ("dashboard", "/dashboard/", "Dashboard"),
                ("job", job_page, "Dashboard"),
                ("compliance", "/compliance/", "Compliance"),
                ("registry", "/registry/", "Registry"),
                ("backups", "/backups/", "Backups"),
                ("account", "/account/", "Account"),
                ("system", "/system/", "System"),
                ("admin-index", "/admin/", "Administration"),
            ],
        ),
        Visitor(
            "operator",
            # Without an authenticator yet: the set-up page is one of those checked.
            _session(operator_user, second_factor=False),
            [
                ("dashboard", "/dashboard/", "Dashboard"),
                ("job", job_page, "Dashboard"),
                ("registry", "/registry/", "Registry"),
                ("account", "/account/", "Account"),
                ("mfa-enroll", "/account/mfa/enroll/", "Account"),
            ],
        ),
        Visitor(
            "viewer",
            _session(viewer_user, second_factor=False),
            [
                ("dashboard", "/dashboard/", "Dashboard"),
                ("job", job_page, "Dashboard"),
                ("account", "/account/", "Account"),
            ],
        ),
        Visitor(
            "compliance",
            _session(compliance_user, second_factor=True),
            [
                ("dashboard", "/dashboard/", "Dashboard"),
                ("compliance", "/compliance/", "Compliance"),
                ("backups", "/backups/", "Backups"),
                ("account", "/account/", "Account"),
            ],
        ),
    ]


class PageProblems:
    """Console errors, uncaught exceptions and failed responses of one page, collected as they happen."""

    def __init__(self, page):
        self.items: list[str] = []
        page.on("console", lambda message: message.type == "error" and self.items.append(f"console: {message.text}"))
        page.on("pageerror", lambda error: self.items.append(f"uncaught: {error}"))
        page.on(
            "response",
            lambda response: response.status >= 400 and self.items.append(f"{response.status} {response.url}"),
        )


def _check(page, problems: PageProblems, label: str) -> None:
    page.wait_for_load_state("networkidle")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{label}.png", full_page=True)
    assert problems.items == [], label
    if page.viewport_size["width"] == PHONE["width"]:
        overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{label} scrolls sideways by {overflow} px"
    page.add_script_tag(path=str(AXE))
    assert page.evaluate(AXE_SERIOUS) == [], label


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_every_role_gets_its_pages_and_navigation_without_overflow_errors_or_axe_violations(
    asgi_live_server, visitors, viewport, chromium
):
    for visitor in visitors:
        context = chromium.new_context(viewport=viewport)
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": visitor.session, "url": asgi_live_server}])
        for name, path, current in visitor.pages:
            page = context.new_page()
            problems = PageProblems(page)
            page.goto(asgi_live_server + path)
            assert page.url == asgi_live_server + path, f"{visitor.role} was sent away from {path}"
            _check(page, problems, f"{visitor.role}-{name}-{viewport['width']}")
            assert page.evaluate(LINK_TEXTS, SIDEBAR_LINKS) == NAVIGATION[visitor.role], (visitor.role, path)
            assert page.evaluate(LINK_TEXTS, CURRENT_LINK) == [current], (visitor.role, path)
            page.close()
        context.close()


def test_sidebar_collapses_on_a_phone_and_opens_from_the_header(asgi_live_server, visitors, chromium):
    operator = visitors[1]
    context = chromium.new_context(viewport=PHONE)
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": operator.session, "url": asgi_live_server}])
    page = context.new_page()
    page.goto(asgi_live_server + "/dashboard/")
    sidebar = page.locator("#nav-sidebar")
    expect(sidebar).to_be_hidden()
    page.get_by_role("button", name="Open the navigation").click()
    expect(sidebar).to_be_visible()
    page.locator("#nav-sidebar-apps a", has_text="Account").click()
    page.wait_for_url(asgi_live_server + "/account/")
    context.close()


@pytest.fixture
def mfa_user(operator_user):
    totp_device_create(operator_user)
    return operator_user


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_sign_in_and_its_code_step_share_the_look_without_errors_or_axe_violations(
    asgi_live_server, mfa_user, password, viewport, chromium
):
    page = chromium.new_page(viewport=viewport)
    problems = PageProblems(page)
    page.goto(asgi_live_server + "/admin/")
    page.wait_for_url("**/accounts/login/?next=%2Fadmin%2F")  # the admin has no sign-in page of its own
    _check(page, problems, f"anonymous-sign-in-{viewport['width']}")
    page.fill("#id_username", mfa_user.username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")
    page.wait_for_url("**/accounts/login/code/**")
    _check(page, problems, f"anonymous-mfa-code-{viewport['width']}")
    page.close()


SOCKET_RECORDER = """
window.__sockets = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(url, protocols) {
    super(url, protocols);
    window.__sockets.push(this);
  }
};
"""


@pytest.mark.parametrize("path", ["/compliance/", "/dashboard/"])
def test_live_banner_is_hidden_while_connected_and_shown_once_disconnected(asgi_live_server, visitors, path, chromium):
    admin = visitors[0]
    context = chromium.new_context(viewport=LAPTOP)
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": admin.session, "url": asgi_live_server}])
    page = context.new_page()
    page.add_init_script(SOCKET_RECORDER)
    page.goto(asgi_live_server + path)
    page.wait_for_function("() => window.__sockets.some((socket) => socket.readyState === WebSocket.OPEN)")
    banner = page.locator("#live-banner")
    expect(banner).to_be_hidden()
    page.evaluate("() => window.__sockets.forEach((socket) => socket.close())")
    expect(banner).to_be_visible()
    expect(banner).to_have_text("Live updates disconnected — reconnecting…")
    context.close()


def test_dashboard_shows_an_empty_state_instead_of_an_empty_chart(asgi_live_server, visitors, chromium):
    viewer = visitors[2]
    context = chromium.new_context(viewport=LAPTOP)
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": viewer.session, "url": asgi_live_server}])
    page = context.new_page()
    page.goto(asgi_live_server + "/dashboard/")
    expect(page.locator("#chart-empty")).to_be_visible()
    expect(page.locator("#jobs-per-minute")).to_be_hidden()
    expect(page.locator("#jobs-per-minute")).to_have_attribute("data-total", "0")
    context.close()
