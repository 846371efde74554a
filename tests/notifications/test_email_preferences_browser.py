"""The notification preferences page and the notification admin lists in headless Chromium, on a laptop and a
phone: they fit, log no error, pass axe-core, and switching an event on is saved."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.notifications.choices import DeliveryReason, EmailDeliveryStatus
from apps.notifications.models import EmailDelivery, EmailRoute, Event
from apps.notifications.preferences import events_visible_to
from tests.shell_pages import LAPTOP, PHONE, PageProblems, Visitor, page_check, session_of

pytestmark = [pytest.mark.browser, pytest.mark.pages, pytest.mark.django_db(transaction=True)]

PAGE = "/account/notifications/"


# Sessions are made before the browser starts (Playwright's event loop then keeps Django off the database).
@pytest.fixture
def operator_visitor(roles, operator_user):
    return Visitor("operator", session_of(operator_user, second_factor=False))


@pytest.fixture
def admin_visitor(roles, admin_user):
    return Visitor("admin", session_of(admin_user, second_factor=True))


@pytest.fixture
def operator_events(operator_user) -> int:
    """How many events an operator may be told of (counted before the browser's event loop runs)."""
    return len(events_visible_to(operator_user))


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_operator_turns_on_email_for_failed_jobs_on_the_preferences_page(
    operator_events, asgi_live_server, operator_visitor, viewport, chromium
):
    context = operator_visitor.context(chromium, asgi_live_server, viewport)
    page = context.new_page()
    problems = PageProblems(page)

    page.goto(asgi_live_server + "/account/")
    page.get_by_role("link", name="Choose which events reach you by email").click()
    page_check(page, problems, f"operator-notifications-{viewport['width']}")
    # The header and a row per event an operator may be told of.
    expect(page.get_by_role("row")).to_have_count(1 + operator_events)
    job_failed = page.get_by_label("Job failed")
    expect(job_failed).not_to_be_checked()
    job_failed.check()
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_text("Saved: email for 1 event changed.")).to_be_visible()
    expect(page.get_by_label("Job failed")).to_be_checked()
    assert page.url == asgi_live_server + PAGE
    page_check(page, problems, f"operator-notifications-saved-{viewport['width']}")
    context.close()


@pytest.fixture
def notification_rows(db):
    EmailRoute.objects.create(
        event="backup.failed", addresses=["oncall@example.test", "backup-team@example.test"], note="On call"
    )
    event = Event.objects.create(
        name="backup.failed", summary="Backup 42 failed: pg_dump exited with status 1", data={"backup_id": 42}
    )
    EmailDelivery.objects.create(
        event=event,
        address="oncall@example.test",
        reason=DeliveryReason.ROUTE,
        status=EmailDeliveryStatus.FAILED,
        attempts=6,
        last_error="ConnectionRefusedError: [Errno 111] Connection refused",
    )


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_notification_admin_lists_fit_without_errors_or_axe_violations(
    asgi_live_server, admin_visitor, notification_rows, viewport, chromium
):
    context = admin_visitor.context(chromium, asgi_live_server, viewport)
    for name in ("emailroute", "event", "emaildelivery"):
        page = context.new_page()
        problems = PageProblems(page)
        page.goto(f"{asgi_live_server}/admin/notifications/{name}/")
        page_check(page, problems, f"admin-notifications-{name}-{viewport['width']}")
        assert page.locator("#result_list tbody tr").count() == 1
        page.close()
    context.close()
