"""The pages of the portal's shell in headless Chromium, for each role, on a laptop and on a phone.

Every page passes tests.shell_pages.page_check (no sideways scroll on a phone, no console error or failed request,
axe-core clean, a screenshot in var/screenshots/), and its sidebar holds exactly the areas the role may use, the
current one marked. The admin's main lists are checked the same way, with their rows.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser_sockets import SOCKET_RECORDER
from tests.mfa import totp_device_create
from tests.shell_pages import LAPTOP, PHONE, PageProblems, page_check

pytestmark = [pytest.mark.browser, pytest.mark.pages, pytest.mark.django_db(transaction=True)]

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
        "Workers",
        "Audit",
        "Administration",
        *YOU,
    ],
    "operator": ["Dashboard", "Quantum jobs", "Registry", *YOU],
    "viewer": ["Dashboard", "Quantum jobs", "Registry", *YOU],
    "compliance": ["Dashboard", "Registry", "Backups", "Compliance", *YOU],
}
# The admin's main lists (name, path, the sidebar link marked on them); API tokens are counted in the users' list.
ADMIN_LISTS = [
    ("users", "/admin/accounts/user/", None),
    ("quantum-jobs", "/admin/quantum/quantumjob/", "Quantum jobs"),
    ("models", "/admin/registry/registeredmodel/", None),
    ("model-versions", "/admin/registry/modelversion/", None),
    ("backups", "/admin/backups/backup/", None),
    ("audit-events", "/admin/audit/auditevent/", "Audit"),
    ("reports", "/admin/compliance/report/", None),
    ("periodic-tasks", "/admin/django_celery_beat/periodictask/", None),
]
# What of a list is cut off: text clipped inside its cell, or cells past the window's right edge that no box of
# their own scrolls to.
CUT_OFF_CELLS = """() => {
  const table = document.querySelector("#result_list");
  let scroller = table.parentElement;
  const scrolls = (box) => ["auto", "scroll"].includes(getComputedStyle(box).overflowX);
  while (scroller && !scrolls(scroller)) scroller = scroller.parentElement;
  const edge = document.documentElement.clientWidth;
  return [...table.querySelectorAll("th, td, th *, td *")].filter((element) => {
    const clipped = getComputedStyle(element).overflowX === "hidden" && element.scrollWidth > element.clientWidth + 1;
    const outside = !scroller && element.getBoundingClientRect().right > edge;
    return clipped || outside;
  }).map((element) => `${element.tagName} ${element.className}: ${element.textContent.trim().slice(0, 40)}`);
}"""


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_every_role_gets_its_pages_and_navigation_without_overflow_errors_or_axe_violations(
    asgi_live_server, visitors, viewport, chromium
):
    for visitor in visitors:
        context = visitor.context(chromium, asgi_live_server, viewport)
        for name, path, current in visitor.pages:
            page = context.new_page()
            problems = PageProblems(page)
            page.goto(asgi_live_server + path)
            assert page.url == asgi_live_server + path, f"{visitor.role} was sent away from {path}"
            page_check(page, problems, f"{visitor.role}-{name}-{viewport['width']}")
            assert page.evaluate(LINK_TEXTS, SIDEBAR_LINKS) == NAVIGATION[visitor.role], (visitor.role, path)
            assert page.evaluate(LINK_TEXTS, CURRENT_LINK) == [current], (visitor.role, path)
            page.close()
        context.close()


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_admin_main_lists_show_their_rows_without_overflow_errors_or_axe_violations(
    asgi_live_server, staff_visitors, viewport, chromium
):
    for visitor in staff_visitors:
        context = visitor.context(chromium, asgi_live_server, viewport)
        for name, path, current in ADMIN_LISTS:
            page = context.new_page()
            problems = PageProblems(page)
            page.goto(asgi_live_server + path)
            label = f"{visitor.role}-admin-{name}-{viewport['width']}"
            page_check(page, problems, label)
            assert page.locator("#result_list tbody tr").count() > 0, f"{label} lists nothing"
            assert page.evaluate(LINK_TEXTS, SIDEBAR_LINKS) == NAVIGATION["admin"], label
            assert page.evaluate(LINK_TEXTS, CURRENT_LINK) == ([current] if current else []), label
            # Long columns wrap or scroll inside the list's own box: nothing is cut off at the page's edge.
            assert page.evaluate(CUT_OFF_CELLS) == [], label
            page.close()
        context.close()


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_admin_pages_of_one_object_fit_the_screen_without_errors_or_axe_violations(
    asgi_live_server, staff_visitors, viewport, chromium
):
    """Each main list's first object, opened from its list as an administrator would: long values (hashes, a
    circuit drawing) wrap or scroll inside their own box."""
    context = staff_visitors[0].context(chromium, asgi_live_server, viewport)
    for name, path, _ in ADMIN_LISTS:
        page = context.new_page()
        page.goto(asgi_live_server + path)
        problems = PageProblems(page)
        page.locator("#result_list tbody tr a[href*='/change/']").first.click()
        page.wait_for_url("**/change/")
        page_check(page, problems, f"admin-admin-{name}-object-{viewport['width']}")
        page.close()
    context.close()


def test_sidebar_collapses_on_a_phone_and_opens_from_the_header(asgi_live_server, visitors, chromium):
    operator = visitors[1]
    context = operator.context(chromium, asgi_live_server, PHONE)
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
    page_check(page, problems, f"anonymous-sign-in-{viewport['width']}")
    page.fill("#id_username", mfa_user.username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")
    page.wait_for_url("**/accounts/login/code/**")
    page_check(page, problems, f"anonymous-mfa-code-{viewport['width']}")
    page.close()


@pytest.mark.parametrize("path", ["/compliance/", "/dashboard/"])
def test_live_banner_is_hidden_while_connected_and_shown_once_disconnected(asgi_live_server, visitors, path, chromium):
    admin = visitors[0]
    context = admin.context(chromium, asgi_live_server, LAPTOP)
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
    context = viewer.context(chromium, asgi_live_server, LAPTOP)
    page = context.new_page()
    page.goto(asgi_live_server + "/dashboard/")
    expect(page.locator("#chart-empty")).to_be_visible()
    expect(page.locator("#jobs-per-minute")).to_be_hidden()
    expect(page.locator("#jobs-per-minute")).to_have_attribute("data-total", "0")
    context.close()
