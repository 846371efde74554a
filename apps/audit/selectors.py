"""Read queries of the audit trail, shared by verification, API, admin and reports."""

from __future__ import annotations

from datetime import datetime

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Max, Q, QuerySet

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


def chain_heads(*, using: str = DEFAULT_DB_ALIAS) -> dict[str, list]:
    """Per chain (its number as text, as JSON keys are), ``[id, hash]`` of its newest event: one index probe each."""
    events = AuditEvent.objects.using(using)
    highest = events.aggregate(highest=Max("chain"))["highest"]
    heads = {}
    for chain in range(highest + 1 if highest is not None else 0):
        head = events.filter(chain=chain).order_by("-id").values_list("id", "hash").first()
        if head is not None:
            heads[str(chain)] = list(head)
    return heads


def events_up_to_heads(heads: dict[str, list], *, using: str = DEFAULT_DB_ALIAS) -> QuerySet[AuditEvent]:
    """The events of each chain up to its head in ``heads``: fixed once those heads were read, whatever commits
    later (a chain's events commit in id order)."""
    condition = Q(pk__in=[])
    for chain, (head_id, _) in heads.items():
        condition |= Q(chain=int(chain), id__lte=head_id)
    return AuditEvent.objects.using(using).filter(condition)
