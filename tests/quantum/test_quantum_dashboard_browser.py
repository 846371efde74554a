"""The quantum dashboard in headless Chromium against the real ASGI app, Redis channel layer and a Celery worker."""

import re
import time

import pytest
from playwright.sync_api import expect

from tests.helpers import PAGE_POST_JSON
from tests.quantum_circuits import slow_qasm2

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Records every websocket the page opens and every status each job row shows, in order.
# Test instrumentation only: the page's own code knows nothing of it.
RECORDERS = """
window.__sockets = [];
window.__holdSockets = false;
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(url, protocols) {
    // While held, connections go to a route that does not exist, so the page stays disconnected.
    super(window.__holdSockets ? url.replace("/ws/", "/ws/held/") : url, protocols);
    window.__sockets.push(this);
  }
};
window.__jobSockets = () => window.__sockets.filter((socket) => socket.url.includes("/ws/jobs/"));
window.__statuses = {};
function recordStatus(row, status) {
  const id = row.dataset.jobId;
  if (!id || !status) return;
  const seen = (window.__statuses[id] = window.__statuses[id] || []);
  if (seen[seen.length - 1] !== status) seen.push(status);
}
document.addEventListener("DOMContentLoaded", () => {
  const body = document.getElementById("jobs-body");
  if (!body) return;
  new MutationObserver((records) => {
    const touched = new Set();
    for (const record of records) {
      if (record.type === "attributes" && record.attributeName === "data-status") {
        recordStatus(record.target, record.oldValue);
        touched.add(record.target);
      }
    }
    touched.forEach((row) => recordStatus(row, row.dataset.status));
  }).observe(body, { subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ["data-status"] });
});
"""

SOCKET_OPEN = "() => window.__jobSockets().length > 0 && window.__jobSockets().at(-1).readyState === 1"

# Jobs are submitted through the API from inside the page, bypassing the dashboard's form (which would add the row).
JOBS_URL = "/api/v1/quantum/jobs/"
API_STATUS = """async (id) => (await (await fetch("/api/v1/quantum/jobs/" + id + "/")).json()).status"""


def _sign_in_to_dashboard(browser, base_url: str, user, password: str):
    page = browser.new_page()
    page.add_init_script(RECORDERS)
    page.goto(base_url + "/dashboard/")
    page.wait_for_url("**/accounts/login/?next=/dashboard/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")
    page.wait_for_url(base_url + "/dashboard/")
    page.wait_for_function(SOCKET_OPEN)
    return page


def _submitted_job_id(page) -> int:
    expect(page.locator("#submit-result")).to_have_text(re.compile(r"Job #\d+ submitted\."), timeout=15_000)
    return int(re.search(r"#(\d+)", page.locator("#submit-result").inner_text()).group(1))


def test_submitted_ghz_row_goes_queued_running_completed_live_and_job_page_shows_histogram(
    asgi_live_server, celery_worker, operator_user, password, chromium
):
    page = _sign_in_to_dashboard(chromium, asgi_live_server, operator_user, password)
    page.evaluate("window.__sameDocument = true")
    assert page.locator("#id_source").input_value().count("cx q[") == 4  # the GHZ example is filled in

    page.click("#submit-job button[type=submit]")
    job_id = _submitted_job_id(page)
    expect(page.locator("#submit-result a")).to_have_attribute("href", f"/dashboard/jobs/{job_id}/")
    row = page.locator(f'#jobs-body tr[data-job-id="{job_id}"]')
    expect(row.locator('[data-field="status"] .badge')).to_have_text("completed", timeout=30_000)

    assert page.evaluate(f"window.__statuses['{job_id}']") == ["queued", "running", "completed"]
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    assert page.locator("#jobs-body tr").first.get_attribute("data-job-id") == str(job_id)
    expect(row.locator('[data-field="num_qubits"]')).to_have_text("5")
    expect(row.locator('[data-field="shots"]')).to_have_text("1,024")
    expect(row.locator('[data-field="owner"]')).to_have_text(operator_user.username)
    expect(page.locator('[data-count-for="completed"]')).to_have_text("1")
    expect(page.locator('[data-count-for="queued"]')).to_have_text("0")
    expect(page.locator("#jobs-per-minute")).to_have_attribute("data-total", "1")

    row.locator('[data-field="id"] a').click()
    page.wait_for_url(f"{asgi_live_server}/dashboard/jobs/{job_id}/")
    histogram = page.locator("#histogram svg.histogram")
    expect(histogram).to_contain_text("00000")
    expect(histogram).to_contain_text("11111")
    expect(page.locator("#job-status")).to_have_text("completed")
    expect(page.locator("#circuit-drawing")).to_contain_text("q_0")
    page.close()


def test_job_page_shows_the_histogram_when_the_job_completes_while_open(
    asgi_live_server, celery_worker, operator_user, password, chromium
):
    page = _sign_in_to_dashboard(chromium, asgi_live_server, operator_user, password)
    status, job = page.evaluate(PAGE_POST_JSON, [JOBS_URL, {"source": slow_qasm2(), "shots": 256}])
    assert status == 201, job
    page.goto(f"{asgi_live_server}/dashboard/jobs/{job['id']}/")
    page.evaluate("window.__sameDocument = true")
    assert page.locator("#histogram").count() == 0  # not finished when the page was rendered
    expect(page.locator("#job-status")).to_have_text("completed", timeout=60_000)
    expect(page.locator("#histogram svg.histogram")).to_be_visible()
    expect(page.locator("#cancel-job")).to_be_hidden()
    assert page.evaluate("window.__sameDocument") is True
    page.close()


def test_invalid_qasm_shows_line_and_column_next_to_the_program(asgi_live_server, operator_user, password, chromium):
    page = _sign_in_to_dashboard(chromium, asgi_live_server, operator_user, password)
    page.fill("#id_source", 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[0;\n')
    page.click("#submit-job button[type=submit]")
    error = page.locator("#error-source")
    expect(error).to_contain_text("line 4, column 6")
    expect(page.locator("#id_source")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#submit-result")).to_have_text("")
    assert page.locator("#jobs-body tr").count() == 0

    # Fixed program, shots over the limit: now the shots field carries the message.
    page.fill("#id_source", 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\nmeasure q -> c;\n')
    page.fill("#id_shots", "1000000")
    page.click("#submit-job button[type=submit]")
    expect(page.locator("#error-shots")).to_contain_text("at most 100,000 shots")
    expect(error).to_be_hidden()
    page.fill("#id_readout", "2")
    page.fill("#id_shots", "10")
    page.click("#submit-job button[type=submit]")
    expect(page.locator("#error-noise")).to_contain_text("The noise rate readout must be a number from 0 to 1")
    page.close()


def test_dropped_websocket_shows_banner_then_reconnects_and_resyncs_missed_jobs(
    asgi_live_server, celery_worker, operator_user, password, chromium
):
    page = _sign_in_to_dashboard(chromium, asgi_live_server, operator_user, password)
    banner = page.locator("#live-banner")
    expect(banner).to_be_hidden()

    page.evaluate("window.__holdSockets = true; window.__jobSockets().at(-1).close()")
    expect(banner).to_be_visible()
    expect(banner).to_have_text("Live updates disconnected — reconnecting…")

    # A job submitted and finished while the page is deaf to events.
    status, job = page.evaluate(PAGE_POST_JSON, [JOBS_URL, {"source": slow_qasm2(qubits=3, layers=2), "shots": 100}])
    assert status == 201, job
    deadline = time.monotonic() + 30
    while page.evaluate(API_STATUS, job["id"]) != "completed":
        assert time.monotonic() < deadline, "the job did not complete"
        page.wait_for_timeout(100)
    page.wait_for_timeout(1500)  # at least one failed reconnect attempt
    assert page.evaluate("window.__sockets.filter((socket) => socket.url.includes('/ws/held/jobs/')).length") >= 1
    expect(banner).to_be_visible()
    assert page.locator(f'#jobs-body tr[data-job-id="{job["id"]}"]').count() == 0

    page.evaluate("window.__holdSockets = false")
    expect(banner).to_be_hidden(timeout=15_000)  # back-off is capped at 10 s
    row = page.locator(f'#jobs-body tr[data-job-id="{job["id"]}"]')
    expect(row.locator('[data-field="status"] .badge')).to_have_text("completed")
    expect(page.locator('[data-count-for="completed"]')).to_have_text("1")
    expect(row.locator('[data-field="num_qubits"]')).to_have_text("3")
    page.close()


def test_idle_dashboard_stays_connected_without_the_banner(asgi_live_server, operator_user, password, chromium):
    page = _sign_in_to_dashboard(chromium, asgi_live_server, operator_user, password)
    page.evaluate("""() => {
      window.__bannerShown = false;
      const banner = document.getElementById("live-banner");
      new MutationObserver(() => { window.__bannerShown ||= !banner.hidden; }).observe(banner, { attributes: true });
    }""")
    # Two rounds of the channel layer's 5 s blocking read: an idle socket must not be dropped by the server.
    page.wait_for_timeout(12_000)
    # Neither of the page's sockets (/ws/events/ for core's list, /ws/jobs/) was closed and opened again.
    assert page.evaluate("window.__sockets.map((socket) => [new URL(socket.url).pathname, socket.readyState])") == [
        ["/ws/events/", 1],
        ["/ws/jobs/", 1],
    ]
    assert page.evaluate("window.__bannerShown") is False
    page.close()
