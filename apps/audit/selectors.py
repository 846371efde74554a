"""Read queries of the audit trail, shared by verification, API, admin and reports."""

from __future__ import annotations

from datetime import datetime

from django.db import DEFAULT_DB_ALIAS
from django.db.models import QuerySet

from .models import AuditArchive, AuditEvent


def chain_anchor(*, using: str = DEFAULT_DB_ALIAS) -> AuditArchive | None:
    """The newest archive: the remaining chain continues from its anchor hash."""
    return AuditArchive.objects.using(using).order_by("-last_id").first()


def events_between(*, since: datetime | None = None, until: datetime | None = None) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all()
    if since is not None:
        events = events.filter(timestamp__gte=since)
    if until is not None:
        events = events.filter(timestamp__lt=until)
    return events
