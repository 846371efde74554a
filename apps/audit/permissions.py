from rest_framework.permissions import BasePermission

from apps.core.choices import Role
from apps.core.permissions import has_role

AUDIT_READER_ROLES = (Role.ADMIN, Role.COMPLIANCE)


class CanReadAuditTrail(BasePermission):
    """Who may read the audit trail, in the API and the admin: administrators and compliance officers."""

    message = "Only administrators and compliance officers may read the audit trail."

    @staticmethod
    def allows(user) -> bool:
        return has_role(user, *AUDIT_READER_ROLES)

    def has_permission(self, request, view) -> bool:
        return self.allows(request.user)
