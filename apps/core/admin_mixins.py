"""Admin building blocks shared by the apps."""


class ServiceWrittenAdminMixin:
    """For tables only services write (audit, jobs, backups): shown, never added, changed or deleted here."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
