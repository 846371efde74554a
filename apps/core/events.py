"""The events the portal tells people about, and the one door every producer calls: ``notify``.

Producers live in every layer (audit and accounts below the job layer, the feature apps above it), while routing
events to people, email and webhooks needs all of them; so the catalogue and the door sit here, in the ground layer,
and the notifications app plugs the dispatcher in when it starts (``notify_dispatcher_set``), as the job layer's
registry is filled in ``AppConfig.ready``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .choices import Role

ALL_ROLES = frozenset(Role)
ADMINS = frozenset({Role.ADMIN})
ADMINS_AND_COMPLIANCE = frozenset({Role.ADMIN, Role.COMPLIANCE})
ADMINS_AND_OPERATORS = frozenset({Role.ADMIN, Role.OPERATOR})


@dataclass(frozen=True)
class EventType:
    name: str
    label: str
    description: str
    # Only members of these roles may be told (superusers hold every role).
    roles: frozenset[str]
    # Told only to the user the event is about (the job's owner, the token's holder), never to the whole role.
    about_own: bool = False
    # A user who has not chosen is told by email when this is true.
    email_by_default: bool = True
    # One per job: the job's own audit event records the fact, so the notification is recorded only when routed.
    frequent: bool = False


EVENT_TYPES: dict[str, EventType] = {
    event.name: event
    for event in (
        EventType(
            "job.completed",
            "Job completed",
            "One of your jobs (quantum, inference, backup, report) finished successfully.",
            ALL_ROLES,
            about_own=True,
            email_by_default=False,
            frequent=True,
        ),
        EventType(
            "job.failed",
            "Job failed",
            "One of your jobs failed.",
            ALL_ROLES,
            about_own=True,
            email_by_default=False,
            frequent=True,
        ),
        EventType("backup.failed", "Backup failed", "A database backup or its verification failed.", ADMINS),
        EventType(
            "backup.stale",
            "No recent verified backup",
            "No backup has been verified within the backup policy's window.",
            ADMINS,
        ),
        EventType(
            "audit.chain_invalid",
            "Audit trail broken",
            "Verifying the audit trail found an event changed, missing or out of order.",
            ADMINS_AND_COMPLIANCE,
        ),
        EventType(
            "audit.checkpoint_invalid",
            "Audit checkpoint invalid",
            "A signed checkpoint of the audit trail does not match the events or its signature.",
            ADMINS_AND_COMPLIANCE,
        ),
        EventType(
            "account.locked_out",
            "Privileged account locked out",
            "Too many failed sign-ins locked out an administrator or compliance officer.",
            ADMINS,
        ),
        EventType(
            "account.new_ip_signin",
            "Sign-in from a new address",
            "Your administrator account signed in from an address it has not used before.",
            ADMINS,
            about_own=True,
        ),
        EventType(
            "token.expiring",
            "API token expiring",
            "One of your API tokens expires within 7 days.",
            ALL_ROLES,
            about_own=True,
        ),
        EventType(
            "model.drift",
            "Model drift",
            "The recent predictions of one of your models' versions drift from its evaluation (label or input "
            "length distribution, population stability index over the threshold); once a day while it lasts.",
            ADMINS_AND_OPERATORS,
            about_own=True,
        ),
        EventType(
            "report.ready",
            "Report ready",
            "A compliance report you requested is ready to download.",
            ADMINS_AND_COMPLIANCE,
            about_own=True,
        ),
    )
}

Dispatcher = Callable[..., None]
_dispatcher: list[Dispatcher] = []


def notify_dispatcher_set(dispatcher: Dispatcher) -> None:
    """Plug in the function that routes events (the notifications app does, when it starts)."""
    _dispatcher[:] = [dispatcher]


def notify(event: str, *, data: dict, user=None, obj=None, summary: str = "") -> None:
    """Tell whoever subscribed that ``event`` happened; called once, by the service where it happened.

    ``data`` is what every recipient may see (ids, names, states, links; never secrets or results); ``user`` is the
    user the event is about (the job's owner, the locked-out account); ``obj`` the object it concerns; ``summary``
    one line for subjects and chat. Call it inside the producer's transaction: nothing is sent unless it commits.
    """
    if event not in EVENT_TYPES:
        raise ValueError(f"Unknown event {event!r}; the events are {', '.join(EVENT_TYPES)}.")
    if _dispatcher:
        _dispatcher[0](EVENT_TYPES[event], data=data, user=user, obj=obj, summary=summary)
