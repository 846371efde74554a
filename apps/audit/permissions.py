from rest_framework.permissions import BasePermission


class CanReadAuditTrail(BasePermission):
    """Who may read the audit trail, in the API and the admin: superusers only, for now."""

    message = "Only superusers may read the audit trail."

    @staticmethod
    def allows(user) -> bool:
        return bool(user and user.is_active and user.is_authenticated and user.is_superuser)

    def has_permission(self, request, view) -> bool:
        return self.allows(request.user)
