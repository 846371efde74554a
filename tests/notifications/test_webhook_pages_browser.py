"""The webhook admin pages in headless Chromium, on a laptop and on a phone: endpoints, the add form with its event
checkboxes, the secret shown once, the rotation's confirmation and the delivery log pass tests.shell_pages.page_check
(no sideways scroll on a phone, no console error or failed request, no serious axe violation)."""

from importlib import import_module

import pytest
from django.conf import settings

from apps.core.events import notify
from apps.notifications.models import WebhookDelivery
from apps.notifications.webhook_admin import SECRET_SESSION_KEY
from apps.notifications.webhooks import webhook_delivery_attempt, webhook_endpoint_create
from tests.shell_pages import LAPTOP, PHONE, PageProblems, page_check, session_of

pytestmark = [pytest.mark.browser, pytest.mark.pages, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def webhook_pages(roles, admin_user, webhook_receiver):
    """An endpoint with one failed delivery, and an administrator's session holding its new secret (made before the
    browser starts: Playwright's event loop then keeps Django off the database)."""
    endpoint, secret = webhook_endpoint_create(
        name="Incident pager", url=webhook_receiver.url, events=["backup.failed", "audit.chain_invalid"],
        owner=admin_user,
    )  # fmt: skip
    webhook_receiver.answer(500)
    notify("backup.failed", data={"backup_id": 7, "error": "disk full"}, summary="Backup #7 failed")
    delivery = WebhookDelivery.objects.get()
    webhook_delivery_attempt(delivery_id=delivery.pk)
    cookie = session_of(admin_user, second_factor=True)
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=cookie)
    session[SECRET_SESSION_KEY] = {"id": endpoint.pk, "secret": secret}
    session.save()
    base = "/admin/notifications"
    pages = [
        ("secret", f"{base}/webhookendpoint/{endpoint.pk}/secret/"),
        ("endpoints", f"{base}/webhookendpoint/"),
        ("endpoint-add", f"{base}/webhookendpoint/add/"),
        ("endpoint", f"{base}/webhookendpoint/{endpoint.pk}/change/"),
        ("rotate", f"{base}/webhookendpoint/{endpoint.pk}/rotate-secret/"),
        ("deliveries", f"{base}/webhookdelivery/"),
        ("delivery", f"{base}/webhookdelivery/{delivery.pk}/change/"),
    ]
    return cookie, secret, pages


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_webhook_admin_pages_fit_the_screen_without_errors_or_axe_violations(
    asgi_live_server, webhook_pages, viewport, chromium
):
    cookie, secret, pages = webhook_pages
    context = chromium.new_context(viewport=viewport)
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": asgi_live_server}])
    for name, path in pages:
        page = context.new_page()
        problems = PageProblems(page)
        page.goto(asgi_live_server + path)
        assert page.url == asgi_live_server + path, f"sent away from {path}"
        page_check(page, problems, f"admin-webhooks-{name}-{viewport['width']}")
        if name == "secret":
            assert page.locator("#webhook-secret").inner_text() == secret
        page.close()
    context.close()
