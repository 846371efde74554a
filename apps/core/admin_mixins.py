"""Admin building blocks shared by the apps."""

from django.contrib import messages

from apps.core.admin_display import formatted_column
from apps.core.choices import Role
from apps.core.permissions import has_role
from apps.core.queueing import QueueUnavailable


def queue_refusal_message(modeladmin, request, exc: QueueUnavailable, *, left: int = 0) -> None:
    """Tell the admin that the task queue refused an action's work (already marked failed) and when to retry.

    An action stops at the first refusal, since the broker would refuse the rest too; ``left`` counts the
    selected objects it did not get to, which stay as they were.
    """
    opts = modeladmin.opts
    if left == 1:
        untouched = f" The other selected {opts.verbose_name} was left as it was."
    elif left:
        untouched = f" The {left} other selected {opts.verbose_name_plural} were left as they were."
    else:
        untouched = ""
    modeladmin.message_user(request, f"{exc}{untouched}", messages.ERROR)


class ServiceWrittenAdminMixin:
    """For tables only services write (audit, jobs, backups): shown, never added, changed or deleted here."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class PortalFormatsAdminMixin:
    """Date-times and counts in list columns and read-only fields written as on every portal page: date-times as
    ``<time>`` elements the browser shows in the viewer's time zone, counts with thousands separators
    (apps/core/formatting.py). Editable fields stay inputs."""

    def _formatted(self, names) -> list:
        return [formatted_column(self.model, name) if isinstance(name, str) else name for name in names]

    def get_list_display(self, request):
        return self._formatted(super().get_list_display(request))

    def get_readonly_fields(self, request, obj=None):
        return self._formatted(super().get_readonly_fields(request, obj))

    def get_fieldsets(self, request, obj=None):
        readonly = set(self.get_readonly_fields(request, obj))

        def shown(name):
            column = formatted_column(self.model, name) if isinstance(name, str) else name
            return column if column in readonly else name

        def line(names):
            return tuple(shown(name) for name in names) if isinstance(names, list | tuple) else shown(names)

        return [
            (title, {**options, "fields": [line(names) for names in options["fields"]]})
            for title, options in super().get_fieldsets(request, obj)
        ]


class AdministratorsOnlyAdminMixin:
    """Pages only administrators see or change, whatever model permissions another role or staff user was given
    (who is told of what, and where the portal's events go)."""

    def _administrator(self, request) -> bool:
        return has_role(request.user, Role.ADMIN)

    def has_module_permission(self, request) -> bool:
        return self._administrator(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return self._administrator(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None) -> bool:
        return self._administrator(request) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._administrator(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._administrator(request) and super().has_delete_permission(request, obj)
