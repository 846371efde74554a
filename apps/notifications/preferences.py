"""Who may be told of an event, and each user's own choice of what reaches them by email.

A user may be told of an event only while they are active and hold one of the event's roles (superusers hold
every role); events about one user (``about_own``) reach only that user. Within that, a user's preference decides,
and without one the event's ``email_by_default``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet

from apps.audit.services import event_record
from apps.core.errors import ApplicationError, NotPermitted
from apps.core.events import EVENT_TYPES, EventType
from apps.core.permissions import has_role

from .models import NotificationPreference


class PreferenceError(ApplicationError):
    code = "notification_preference"


@dataclass(frozen=True)
class EventChoice:
    """One line of a user's preferences: an event they may be told of and whether email is on."""

    event: EventType
    email: bool
    chosen: bool  # False: nothing chosen yet, ``email`` is the event's default

    @property
    def name(self) -> str:
        return self.event.name


def events_visible_to(user) -> list[EventType]:
    """The events the user's role may be told of, in the catalogue's order."""
    return [event for event in EVENT_TYPES.values() if has_role(user, *event.roles)]


def preferences_of(*, user) -> list[EventChoice]:
    """The user's choice for every event they may be told of (the default where they chose nothing)."""
    chosen = dict(NotificationPreference.objects.filter(user=user).values_list("event", "email"))
    return [
        EventChoice(event=event, email=chosen.get(event.name, event.email_by_default), chosen=event.name in chosen)
        for event in events_visible_to(user)
    ]


@transaction.atomic
def preferences_save(*, user, choices: dict[str, bool]) -> dict[str, bool]:
    """Set email on or off for the given events; returns the changed ones (event → new value), audited.

    Every named event must exist and be one the user's role may be told of; nothing is saved otherwise.
    """
    current = {choice.name: choice for choice in preferences_of(user=user)}
    for name, value in choices.items():
        if name not in EVENT_TYPES:
            raise PreferenceError(f"Unknown event {name!r}; the events are {', '.join(EVENT_TYPES)}.", field=name)
        if name not in current:
            raise NotPermitted(f"Your role is not told of {name!r}; you may choose only {', '.join(current)}.")
        if not isinstance(value, bool):
            raise PreferenceError(f"Email for {name!r} must be true or false.", field=name)
    changed = {name: value for name, value in choices.items() if current[name].email != value}
    for name, value in changed.items():
        NotificationPreference.objects.update_or_create(user=user, event=name, defaults={"email": value})
    if changed:
        event_record(
            action="notifications.preferences.changed",
            actor=user,
            obj=user,
            changes={name: {"email": [not value, value]} for name, value in changed.items()},
        )
    return changed


def users_who_may_be_told(event_type: EventType, about=None) -> QuerySet:
    """The users whose role may be told of an event, as one query: active, holding one of the event's roles (or
    superusers), and for ``about_own`` events only the event's own user."""
    User = get_user_model()
    if event_type.about_own and not getattr(about, "pk", None):
        return User.objects.none()
    in_role = Exists(User.groups.through.objects.filter(user_id=OuterRef("pk"), group__name__in=event_type.roles))
    users = User.objects.filter(Q(is_superuser=True) | in_role, is_active=True)
    if event_type.about_own:
        users = users.filter(pk=about.pk)
    return users


def users_to_tell(event_type: EventType, about=None) -> QuerySet:
    """The users an event reaches by email: those who may be told, with an address and email on (chosen, or by
    default)."""
    preference = NotificationPreference.objects.filter(user_id=OuterRef("pk"), event=event_type.name)
    wanted = (
        ~Exists(preference.filter(email=False))
        if event_type.email_by_default
        else Exists(preference.filter(email=True))
    )
    return users_who_may_be_told(event_type, about).filter(wanted).exclude(email="")


def user_may_be_told(user, event_type: EventType) -> bool:
    """Whether the user may still be told of an event of this type (checked again when each email is sent)."""
    return bool(user) and user.is_active and has_role(user, *event_type.roles)
