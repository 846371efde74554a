"""Roles and who may read or write what, shared by every app.

Roles are Django groups (see apps.core.choices.Role); superusers hold every role.
"""

from __future__ import annotations

from apps.core.choices import Role

# Who may see every user's objects; everyone else sees only their own.
READ_ALL_ROLES = (Role.ADMIN, Role.VIEWER)
# Who may change things at all; viewers and compliance officers only read.
WRITE_ROLES = (Role.ADMIN, Role.OPERATOR)


def has_role(user, *roles: str) -> bool:
    if not (user and user.is_authenticated and user.is_active):
        return False
    if user.is_superuser:
        return True
    return not role_names(user).isdisjoint(roles)


def role_names(user) -> frozenset[str]:
    """The names of the user's groups, read once per user object (a request's user: once per request)."""
    cached = getattr(user, "_role_names", None)
    if cached is None:
        cached = user._role_names = frozenset(user.groups.values_list("name", flat=True))
    return cached
