"""Role- and owner-based access rules for API views, shared by every app.

Roles are Django groups (see apps.core.choices.Role); superusers hold every role.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

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
    cached = getattr(user, "_role_names", None)
    if cached is None:
        cached = user._role_names = frozenset(user.groups.values_list("name", flat=True))
    return not cached.isdisjoint(roles)


def role_required(*roles: str) -> type[BasePermission]:
    """A permission class admitting users with any of ``roles``."""

    class RoleRequired(BasePermission):
        message = f"This needs one of the roles: {', '.join(roles)}."

        def has_permission(self, request, view) -> bool:
            return has_role(request.user, *roles)

    return RoleRequired


class OwnedObjectsQuerysetMixin:
    """Scope a viewset's queryset: readers of all see everything, others only their own.

    Objects a user may not see are simply not in the queryset, so asking for
    them gives 404 rather than revealing that they exist.
    """

    owner_field = "owner"

    def get_queryset(self):
        queryset = super().get_queryset()
        if has_role(self.request.user, *READ_ALL_ROLES):
            return queryset
        return queryset.filter(**{self.owner_field: self.request.user})


class WritesByOwnerOrAdmin(BasePermission):
    """Reads for whoever may see the object; writes by operators on their own objects, or admins."""

    message = "Only the owner (an operator) or an administrator may change this."

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or has_role(request.user, *WRITE_ROLES)

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS or has_role(request.user, Role.ADMIN):
            return True
        return getattr(obj, f"{view.owner_field}_id", None) == request.user.pk
