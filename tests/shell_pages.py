"""What the page checks in headless Chromium share: signed-in sessions per role, and the check every page passes.

Every page is checked the same way: it fits a 390 px wide screen without scrolling sideways, logs no console
error, loads every asset (no 404 favicon) and has no serious or critical axe-core violation. Screenshots land in
var/screenshots/<role>-<page>-<width>.png to be looked at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.test import Client

from tests.helpers import AXE_SERIOUS, axe_add
from tests.mfa import otp_force_login

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
NO_SIDEWAYS_SCROLL = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"


def photograph_both_widths(page, name: str) -> None:
    """Screenshots of the page at laptop and phone width (var/screenshots/<name>-desktop.png, -phone.png); the
    phone's must not scroll sideways. The page is left at laptop width."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width_name, viewport in (("desktop", LAPTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        page.screenshot(path=SCREENSHOTS / f"{name}-{width_name}.png", full_page=True)
        if width_name == "phone":
            assert page.evaluate(NO_SIDEWAYS_SCROLL), f"{name} scrolls sideways at 390 px"
    page.set_viewport_size(LAPTOP)


@dataclass
class Visitor:
    """A signed-in browser session of one role, and the pages to check as that role (name, path, current nav link)."""

    role: str
    session: str
    pages: list[tuple[str, str, str | None]] = field(default_factory=list)

    def context(self, browser, server: str, viewport: dict):
        """A browser context signed in as this visitor."""
        context = browser.new_context(viewport=viewport)
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": self.session, "url": server}])
        return context


def session_of(user, *, second_factor: bool) -> str:
    """A session cookie for ``user``; made before the browser starts (Playwright's event loop then keeps Django off
    the database)."""
    client = Client()
    if second_factor:
        otp_force_login(client, user)
    else:
        client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


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


def page_check(page, problems: PageProblems, label: str) -> None:
    """Photograph the page as ``label``; no problem, no sideways scroll on a phone, no serious axe violation."""
    page.wait_for_load_state("networkidle")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{label}.png", full_page=True)
    assert problems.items == [], f"{label}: {problems.items}"
    if page.viewport_size["width"] == PHONE["width"]:
        overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{label} scrolls sideways by {overflow} px"
    axe_add(page)
    violations = page.evaluate(AXE_SERIOUS)
    assert violations == [], f"{label}: {violations}"
