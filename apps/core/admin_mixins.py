"""Admin building blocks shared by the apps."""

from django.contrib import messages

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
