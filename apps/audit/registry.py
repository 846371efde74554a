"""Models whose every change is audited, wherever it happens (opt-in registration)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models


@dataclass(frozen=True)
class TrackedModel:
    action_prefix: str  # e.g. "schedule.periodic_task" gives schedule.periodic_task.changed
    ignored_fields: frozenset[str]


_tracked: dict[type[models.Model], TrackedModel] = {}


def audit_register(model: type[models.Model], *, action_prefix: str, ignored_fields: tuple[str, ...] = ()) -> None:
    """Record creation, field changes (before/after), deletion and m2m changes of ``model``."""
    _tracked[model] = TrackedModel(action_prefix=action_prefix, ignored_fields=frozenset(ignored_fields))


def tracked(model: type[models.Model]) -> TrackedModel | None:
    return _tracked.get(model)
