from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib.auth.models import Group

        from apps.audit.registry import audit_register

        from . import receivers  # noqa: F401 - connect the lockout and session receivers
        from .models import User

        # A login updates last_login; the login itself is the event.
        audit_register(User, action_prefix="accounts.user", ignored_fields=("last_login",))
        audit_register(Group, action_prefix="accounts.role")
