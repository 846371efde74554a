"""Browser API access in headless Chromium: a page on another origin (a second local port) calling the API with a
token, allowed when its origin is listed and blocked when not; and the Content-Security-Policy refusing what an
attacker would inject into a real page while the page's own nonce still works."""

from __future__ import annotations

import http.server
import threading

import pytest
from django.conf import settings as django_settings

from apps.accounts.tokens import token_create
from apps.core.choices import MaintenanceStatus
from apps.core.models import MaintenanceRun
from tests.helpers import free_port
from tests.shell_pages import LAPTOP, PageProblems, photograph_both_widths, session_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The other origin's page: a notebook-like script that lists the caller's quantum jobs with a token, as a script in
# a browser would, and writes what happened into the page.
NOTEBOOK_PAGE = """<!DOCTYPE html>
<html lang="en"><head><title>Notebook</title></head><body><p id="result">pending</p>
<script>
const [portal, token] = decodeURIComponent(location.hash.slice(1)).split(" ");
fetch(portal + "/api/v1/quantum/jobs/", {headers: {Authorization: "Bearer " + token, Accept: "application/json"}})
  .then((response) => response.json().then((body) => `status ${response.status} count ${body.count}`))
  .catch((error) => `blocked ${error.name}`)
  .then((text) => { document.getElementById("result").textContent = text; });
</script></body></html>"""


class NotebookHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = NOTEBOOK_PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def other_origin():
    """A second web server on another local port: another origin than the portal's."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), NotebookHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def token(operator_user):
    return token_create(owner=operator_user, name="notebook", scopes=["read"], expires_in_days=1).secret


def notebook_result(chromium, notebook: str, portal: str, token: str) -> tuple[str, list[str]]:
    page = chromium.new_page()
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    page.goto(f"{notebook}/#{portal} {token}")
    result = page.locator("#result")
    result.filter(has_not_text="pending").wait_for(timeout=15_000)
    text = result.text_content()
    page.close()
    return text, messages


def test_a_page_on_a_listed_origin_calls_the_api_with_a_token(
    asgi_live_server, other_origin, token, settings, chromium
):
    settings.CORS_ALLOWED_ORIGINS = [other_origin]
    text, _ = notebook_result(chromium, other_origin, asgi_live_server, token)
    assert text == "status 200 count 0"


def test_a_page_on_an_unlisted_origin_is_blocked_by_the_browser(
    asgi_live_server, other_origin, token, settings, chromium
):
    settings.CORS_ALLOWED_ORIGINS = ["http://127.0.0.1:1"]
    text, messages = notebook_result(chromium, other_origin, asgi_live_server, token)
    assert text == "blocked TypeError"
    assert any("blocked by CORS policy" in message for message in messages), messages


# Listens for the policy's violation reports, then tries what an injection would: an inline script, an inline event
# handler, an inline style; and what the page itself may do: a script carrying the page's own nonce.
INJECTIONS = """async () => {
  const violations = [];
  document.addEventListener("securitypolicyviolation", (event) => {
    violations.push(`${event.effectiveDirective} ${event.blockedURI} ${event.disposition}`);
  });
  const injected = document.createElement("script");
  injected.textContent = "window.injectedRan = true;";
  document.body.append(injected);
  const holder = document.createElement("div");
  holder.innerHTML = '<img src="/static/favicon.svg" alt="" onload="window.handlerRan = true">'
    + '<p id="injected-style" style="color: rgb(255, 0, 0)">x</p>';
  document.body.append(holder);
  const nonce = document.getElementById("unfold-theme-colors").nonce;
  const own = document.createElement("script");
  own.nonce = nonce;
  own.textContent = "window.ownRan = true;";
  document.body.append(own);
  await new Promise((resolve) => setTimeout(resolve, 500));
  return {
    violations,
    injectedRan: Boolean(window.injectedRan),
    handlerRan: Boolean(window.handlerRan),
    styled: getComputedStyle(document.getElementById("injected-style")).color === "rgb(255, 0, 0)",
    ownRan: Boolean(window.ownRan),
    nonceShown: document.getElementById("unfold-theme-colors").getAttribute("nonce"),
  };
}"""


@pytest.fixture
def operator_session(operator_user):
    return session_of(operator_user, second_factor=False)


def test_an_injected_inline_script_handler_or_style_is_blocked_on_a_real_page(
    asgi_live_server, operator_session, chromium
):
    context = chromium.new_context()
    cookie = {"name": django_settings.SESSION_COOKIE_NAME, "value": operator_session, "url": asgi_live_server}
    context.add_cookies([cookie])
    page = context.new_page()
    problems = PageProblems(page)
    page.goto(f"{asgi_live_server}/dashboard/")
    page.wait_for_load_state("networkidle")
    assert problems.items == [], "the page itself breaks its policy"
    outcome = page.evaluate(INJECTIONS)
    assert outcome["injectedRan"] is False
    assert outcome["handlerRan"] is False
    assert outcome["styled"] is False
    assert outcome["ownRan"] is True
    # Browsers hide a nonce from the DOM's attributes, so that injected CSS cannot read it out.
    assert outcome["nonceShown"] == ""
    assert sorted(outcome["violations"]) == [
        "script-src-attr inline enforce",
        "script-src-elem inline enforce",
        "style-src-attr inline enforce",
    ]
    # Each refusal is a console error too: what every page test's no-console-error check catches.
    assert len([item for item in problems.items if "Content Security Policy" in item]) == 3
    context.close()


@pytest.fixture
def failed_verification(db):
    return MaintenanceRun.objects.create(
        task_name="maintenance.audit_verify", status=MaintenanceStatus.FAILED, message="event 41 was changed"
    )


@pytest.fixture
def admin_session(roles, admin_user):
    return session_of(admin_user, second_factor=True)


def test_the_audit_banner_keeps_its_look_from_a_class_under_the_policy(
    asgi_live_server, failed_verification, admin_session, chromium
):
    context = chromium.new_context(viewport=LAPTOP)
    cookie = {"name": django_settings.SESSION_COOKIE_NAME, "value": admin_session, "url": asgi_live_server}
    context.add_cookies([cookie])
    for path in ("/dashboard/", "/admin/"):
        page = context.new_page()
        problems = PageProblems(page)
        page.goto(asgi_live_server + path)
        page.wait_for_load_state("networkidle")
        banner = page.locator("#audit-verify-banner")
        assert "event 41 was changed" in banner.text_content()
        assert banner.evaluate("(element) => getComputedStyle(element).backgroundColor") == "rgb(186, 33, 33)"
        photograph_both_widths(page, f"csp-audit-banner{path.replace('/', '-').rstrip('-')}")
        assert problems.items == [], path
        page.close()
    context.close()
