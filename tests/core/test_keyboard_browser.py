"""Every main page can be used from the keyboard: tabbing from the top reaches each visible control (links, buttons,
fields, summaries, anything given a tab stop), and the control that has the focus shows it."""

from __future__ import annotations

import pytest

from tests.shell_pages import LAPTOP

pytestmark = [pytest.mark.browser, pytest.mark.pages, pytest.mark.django_db(transaction=True)]

# The visible controls of the page, each marked with its number (data-tab-stop) and described; their look unfocused
# is kept to compare with their look once they have the focus.
VISIBLE_CONTROLS = """() => {
  const native = "a, button, input:not([type=hidden]), select, textarea, summary";
  // Not in a closed <details>, not display:none or visibility:hidden, not empty, not inert.
  const shown = (element) => {
    const box = element.getBoundingClientRect();
    return element.checkVisibility({visibilityProperty: true}) && box.width > 0 && box.height > 0
      && !element.closest("[inert], [aria-hidden=true]");
  };
  const stop = (element) => element.matches("[tabindex]") ? element.tabIndex >= 0 : !element.disabled;
  const controls = [...document.querySelectorAll(`${native}, [tabindex]`)].filter((e) => stop(e) && shown(e));
  window.__unfocused = controls.map((element) => window.__focusLook(element));
  controls.forEach((element, index) => { element.dataset.tabStop = index; });
  return controls.map(window.__describe);
}"""
HELPERS = """
window.__focusLook = (element) => {
  const style = getComputedStyle(element);
  return [style.outlineStyle, style.outlineWidth, style.outlineColor, style.boxShadow].join(" ");
};
window.__describe = (element) => {
  const name = (element.getAttribute("aria-label") || element.textContent || element.name || "").trim();
  return `${element.tagName.toLowerCase()}${element.id ? "#" + element.id : ""} "${name.slice(0, 40)}"`;
};
"""
# The control that has the focus now: its number, its description, whether it looks other than unfocused.
FOCUSED = """() => {
  const element = document.activeElement;
  if (!element || element === document.body) return null;
  const index = element.dataset.tabStop === undefined ? null : Number(element.dataset.tabStop);
  const shows = index === null || window.__focusLook(element) !== window.__unfocused[index];
  return {index, name: window.__describe(element), shows};
}"""


def _pages(portal_pages) -> list[tuple[str, str]]:
    return [
        ("dashboard", "/dashboard/"),
        ("job", portal_pages.job),
        ("registry", "/registry/"),
        ("model", portal_pages.model),
        ("backups", "/backups/"),
        ("backup", portal_pages.backup),
        ("compliance", "/compliance/"),
        ("account", "/account/"),
        ("admin-index", "/admin/"),
    ]


def test_tabbing_from_the_top_reaches_every_visible_control_and_shows_where_the_focus_is(
    asgi_live_server, staff_visitors, portal_pages, chromium
):
    admin = staff_visitors[0]
    context = admin.context(chromium, asgi_live_server, LAPTOP)
    context.add_init_script(HELPERS)
    unreached, unmarked = {}, {}
    for name, path in _pages(portal_pages):
        page = context.new_page()
        page.goto(asgi_live_server + path)
        page.wait_for_load_state("networkidle")
        controls = page.evaluate(VISIBLE_CONTROLS)
        reached, invisible = set(), []
        # Twice as many presses as controls: a control that takes two stops (or a skipped one) still ends the loop.
        for _ in range(2 * len(controls) + 5):
            page.keyboard.press("Tab")
            focused = page.evaluate(FOCUSED)
            if focused is None:  # past the last control, the focus leaves the page
                break
            if focused["index"] is not None:
                reached.add(focused["index"])
            if not focused["shows"]:
                invisible.append(focused["name"])
        unreached[name] = [control for index, control in enumerate(controls) if index not in reached]
        unmarked[name] = invisible
        page.close()
    context.close()
    missed = {page: controls for page, controls in unreached.items() if controls}
    without_focus_look = {page: controls for page, controls in unmarked.items() if controls}
    assert not missed, f"Tab never reaches: {missed}"
    assert not without_focus_look, f"No visible focus on: {without_focus_look}"
