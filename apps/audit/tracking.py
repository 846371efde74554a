"""Field-level change tracking: which saves are audited, and their before/after diffs."""

from __future__ import annotations

from django.db import models

from apps.core.request_context import current_request

from .hashing import json_normalized
from .registry import tracked

ADMIN_PREFIX = "/admin/"
# Models whose rows are bookkeeping of their own (or the trail itself), never worth an event.
NEVER_TRACKED = frozenset(
    {
        "audit.auditevent",
        "audit.auditcheckpoint",
        "audit.auditarchive",
        # Sinks are written by apps/audit/forwarding.py, which records their changes with the URL's credentials masked.
        "audit.auditsink",
        "sessions.session",
        "accounts.usersession",
        "admin.logentry",
        "django_celery_beat.periodictasks",
        "core.maintenancerun",
    }
)


def tracking_for(model: type[models.Model]) -> tuple[str, frozenset[str]] | None:
    """(action prefix, ignored fields) when saves of ``model`` are audited right now, else None.

    Registered models are audited everywhere under their own prefix; any other
    model is audited as ``admin.object`` while an admin page changes it.
    """
    registration = tracked(model)
    if registration is not None:
        return registration.action_prefix, registration.ignored_fields
    if model._meta.label_lower in NEVER_TRACKED:
        return None
    request = current_request.get()
    if request is not None and request.path.startswith(ADMIN_PREFIX):
        return "admin.object", frozenset()
    return None


def _field_names(model: type[models.Model], ignored: frozenset[str]) -> list[str]:
    return [
        field.attname
        for field in model._meta.concrete_fields
        if field.name not in ignored and field.attname not in ignored
    ]


def snapshot(instance: models.Model, ignored: frozenset[str]) -> dict:
    return json_normalized({name: getattr(instance, name) for name in _field_names(type(instance), ignored)})


def stored_snapshot(instance: models.Model, ignored: frozenset[str], using: str) -> dict | None:
    """The row as the database holds it before this save, or None for a new row."""
    if instance.pk is None or instance._state.adding:
        return None
    names = _field_names(type(instance), ignored)
    row = type(instance)._base_manager.using(using).filter(pk=instance.pk).values(*names).first()
    return None if row is None else json_normalized(row)


def diff(before: dict, after: dict) -> dict:
    return {
        name: {"before": before.get(name), "after": value} for name, value in after.items() if before.get(name) != value
    }
