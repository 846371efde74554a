"""Date-times on the portal's pages read in the viewer's own time zone, in a real browser."""

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect

from apps.quantum.models import QuantumJob
from apps.quantum.services import JobSpec, job_submit
from tests.quantum_circuits import ghz_qasm2

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CREATED = datetime(2026, 12, 7, 13, 3, tzinfo=UTC)


@pytest.fixture
def job_page(operator_user) -> tuple[str, str]:
    """A job created at a known instant, and a session of its owner (made before the browser starts)."""
    job = job_submit(owner=operator_user, spec=JobSpec(source=ghz_qasm2(), name="GHZ-5"))
    QuantumJob.objects.filter(pk=job.pk).update(created_at=CREATED)
    client = Client()
    client.force_login(operator_user)
    return f"/dashboard/jobs/{job.pk}/", client.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.mark.parametrize(
    ("zone", "text"),
    [
        ("Europe/Berlin", "7 Dec 2026, 14:03 CET"),
        ("America/New_York", "7 Dec 2026, 08:03 EST"),
        ("UTC", "7 Dec 2026, 13:03 UTC"),
    ],
)
def test_a_date_on_a_page_reads_in_the_browsers_time_zone(asgi_live_server, job_page, zone, text, chromium):
    path, session = job_page
    context = chromium.new_context(timezone_id=zone, viewport={"width": 390, "height": 844})
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": asgi_live_server}])
    page = context.new_page()
    page.goto(asgi_live_server + path)
    created = page.locator('time[datetime="2026-12-07T13:03:00Z"]')
    expect(created).to_have_text(text)
    context.close()


def test_a_date_added_to_the_page_later_is_rewritten_too(asgi_live_server, job_page, chromium):
    path, session = job_page
    context = chromium.new_context(timezone_id="Europe/Berlin")
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": asgi_live_server}])
    page = context.new_page()
    page.goto(asgi_live_server + path)
    page.evaluate(
        """() => document.querySelector("main").insertAdjacentHTML(
             "beforeend", '<p id="added"><time datetime="2026-07-07T13:03:00Z">7 Jul 2026, 13:03 UTC</time></p>')"""
    )
    expect(page.locator("#added time")).to_have_text("7 Jul 2026, 15:03 CEST")
    context.close()


def test_a_job_row_added_live_shows_its_creation_in_the_browsers_time_zone(asgi_live_server, roles, job_page, chromium):
    _, session = job_page
    context = chromium.new_context(timezone_id="Asia/Tokyo")
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": asgi_live_server}])
    page = context.new_page()
    page.goto(asgi_live_server + "/dashboard/")
    page.click("#submit-job button[type=submit]")
    expect(page.locator("#submit-result")).to_have_text(re.compile(r"Job #\d+ submitted\."), timeout=15_000)
    job_id = re.search(r"#(\d+)", page.locator("#submit-result").inner_text()).group(1)
    created = page.locator(f'#jobs-body tr[data-job-id="{job_id}"] [data-field="created_at"] time')
    detail = f'async () => (await (await fetch("/api/v1/quantum/jobs/{job_id}/")).json()).created_at'
    api_created = page.evaluate(detail)
    in_tokyo = datetime.fromisoformat(api_created).astimezone(ZoneInfo("Asia/Tokyo"))
    # Tokyo has no abbreviation of its own in the browser: its offset names it.
    expect(created).to_have_text(f"{in_tokyo:%-d %b %Y, %H:%M} GMT+9")
    context.close()
