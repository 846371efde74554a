"""A mail server that is down delays notification emails, retried with a growing wait, and never loses them silently:
sent once the server is back, or failed with the error kept (and sent again from the admin)."""

import time

import pytest
from aiosmtpd.controller import Controller
from django.db import transaction

from apps.audit.models import AuditEvent
from apps.core.events import notify
from apps.notifications.choices import EmailDeliveryStatus
from apps.notifications.email import email_deliveries_resend, retry_countdown
from apps.notifications.models import EmailDelivery

from ..helpers import free_port
from ..mail_server import MailServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def smtp_down(settings):
    """The portal's mail settings point at a port where no server listens yet; ``start()`` starts one there."""
    server = MailServer(port=free_port())
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = server.host, server.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    settings.NOTIFICATION_EMAIL_RETRY_SECONDS = 0.2
    controllers = []

    def start() -> MailServer:
        controller = Controller(server, hostname=server.host, port=server.port)
        controller.start()
        controllers.append(controller)
        return server

    server.start = start
    yield server
    for controller in controllers:
        controller.stop()


def wait_for_delivery(condition, timeout: float = 60) -> EmailDelivery:
    deadline = time.monotonic() + timeout
    while True:
        delivery = EmailDelivery.objects.first()
        if delivery is not None and condition(delivery):
            return delivery
        if time.monotonic() > deadline:
            pytest.fail(f"The delivery did not get there within {timeout} s: {delivery and vars(delivery)}")
        time.sleep(0.05)


def notify_backup_failed():
    with transaction.atomic():
        notify("backup.failed", data={"backup_id": 3}, summary="Backup 3 failed")


def test_email_is_retried_while_the_server_is_down_and_sent_once_it_is_back(
    admin_user, smtp_down, celery_worker, settings
):
    settings.NOTIFICATION_EMAIL_ATTEMPTS = 10  # tries left however slowly this test gets to starting the server
    notify_backup_failed()

    waiting = wait_for_delivery(lambda delivery: delivery.attempts >= 2)
    assert waiting.status == EmailDeliveryStatus.PENDING
    assert "refused" in waiting.last_error.lower()

    smtp_down.start()
    (message,) = smtp_down.wait_for(1, to="alice-admin@example.test")
    sent = wait_for_delivery(lambda delivery: delivery.status == EmailDeliveryStatus.SENT)
    assert sent.sent_at is not None
    assert sent.attempts >= 3
    assert message["Subject"] == "[Opsdeck] Backup failed: Backup 3 failed"


def test_email_fails_with_the_error_kept_after_the_last_try_and_is_sent_again_on_request(
    admin_user, smtp_down, celery_worker, settings
):
    settings.NOTIFICATION_EMAIL_ATTEMPTS = 3
    notify_backup_failed()

    failed = wait_for_delivery(lambda delivery: delivery.status == EmailDeliveryStatus.FAILED)
    assert failed.attempts == 3
    assert "ConnectionRefusedError" in failed.last_error

    smtp_down.start()
    assert email_deliveries_resend(delivery_ids=[failed.pk], by=admin_user) == 1
    smtp_down.wait_for(1, to="alice-admin@example.test")
    sent = wait_for_delivery(lambda delivery: delivery.status == EmailDeliveryStatus.SENT)
    assert sent.attempts == 1
    resent = AuditEvent.objects.get(action="notifications.email_delivery.resent")
    assert resent.actor_username == admin_user.username


def test_the_wait_between_tries_doubles(settings):
    settings.NOTIFICATION_EMAIL_RETRY_SECONDS = 60
    assert [retry_countdown(attempts) for attempts in (1, 2, 3, 4, 5)] == [60, 120, 240, 480, 960]


def test_only_failed_deliveries_are_sent_again(admin_user, smtp_down):
    notify_backup_failed()
    (pending,) = EmailDelivery.objects.all()

    assert email_deliveries_resend(delivery_ids=[pending.pk], by=admin_user) == 0
    assert not AuditEvent.objects.filter(action="notifications.email_delivery.resent").exists()


class RefusingServer(MailServer):
    """Refuses one address for good (550), as a mail server does for a mailbox that does not exist."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address == "alice-admin@example.test":
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_an_address_the_mail_server_refuses_for_good_fails_at_once_with_its_answer(
    admin_user, smtp_down, celery_worker
):
    refusing = RefusingServer(port=smtp_down.port)
    controller = Controller(refusing, hostname=refusing.host, port=refusing.port)
    controller.start()
    try:
        notify_backup_failed()
        failed = wait_for_delivery(lambda delivery: delivery.status == EmailDeliveryStatus.FAILED)
    finally:
        controller.stop()

    assert failed.attempts == 1
    assert "No such mailbox" in failed.last_error
    assert refusing.messages == []
