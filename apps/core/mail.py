"""Emails in the product's look: a subject, a plain-text body and an HTML body rendered from templates.

Each message is ``templates/email/<name>.subject.txt``, ``<name>.txt`` and ``<name>.html`` (the HTML extends
``email/base.html``). Sending happens in Celery tasks, so that a slow or absent mail server never holds up a
request; the tasks retry on connection errors.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

# What a task retries on: the mail server down, slow or answering with an error (smtplib's errors are OSErrors).
MAIL_RETRY_ERRORS = (OSError,)


def portal_link(path: str) -> str:
    """An absolute link into the portal (PORTAL_URL + path), for messages read outside it."""
    return f"{settings.PORTAL_URL}{path}"


def email_message(*, name: str, to: list[str], context: dict) -> EmailMultiAlternatives:
    """The email ``name`` rendered for ``to``, with plain-text and HTML bodies."""
    context = {"portal_url": settings.PORTAL_URL, **context}
    subject = " ".join(render_to_string(f"email/{name}.subject.txt", context).split())
    message = EmailMultiAlternatives(
        subject=f"{settings.EMAIL_SUBJECT_PREFIX}{subject}",
        body=render_to_string(f"email/{name}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
    )
    message.attach_alternative(render_to_string(f"email/{name}.html", {**context, "subject": subject}), "text/html")
    return message


def email_send(*, name: str, to: list[str], context: dict) -> None:
    """Render and send now (from a task); raises on failure so that the task can retry."""
    email_message(name=name, to=to, context=context).send(fail_silently=False)
