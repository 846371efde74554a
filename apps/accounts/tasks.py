"""Celery tasks of accounts."""

from celery import shared_task

from apps.core.mail import MAIL_RETRY_ERRORS
from apps.core.maintenance import maintenance_task

from . import password_reset, services, sessions, tokens

lockout_records_clear_expired = maintenance_task("lockout_clear_expired", services.lockout_records_clear_expired)
tokens_flag_expired = maintenance_task("tokens_flag_expired", tokens.tokens_flag_expired)
tokens_announce_expiring = maintenance_task("tokens_announce_expiring", tokens.tokens_announce_expiring)
session_clear_expired = maintenance_task("session_clear_expired", sessions.session_clear_expired)


@shared_task(
    name="accounts.password_reset_email",
    autoretry_for=MAIL_RETRY_ERRORS,
    retry_backoff=10,
    retry_backoff_max=300,
    max_retries=5,
)
def password_reset_email(address: str, ip: str = "") -> str:
    """Email a reset link to the accounts using ``address`` (none: nothing is sent); retries while mail is down.

    Takes the address, not a user id: the request page must not look the account up (see password_reset.py).
    """
    sent = password_reset.password_reset_send(address=address, ip=ip)
    return f"Sent {sent} password reset email{'s' if sent != 1 else ''}."
