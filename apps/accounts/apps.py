from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.contrib.auth.models import Group

        from apps.audit.registry import audit_register
        from apps.core.consumers import websocket_refusal_install
        from apps.core.secrets import secret_pattern_register

        from . import receivers  # noqa: F401 - connect the lockout and session receivers
        from .access import websocket_refusal
        from .models import OidcIdentity, User
        from .tokens import TOKEN_SHAPE

        websocket_refusal_install(websocket_refusal)
        # A token pasted into a message must not leave the portal in a diagnostics bundle.
        secret_pattern_register("API tokens", TOKEN_SHAPE)

        # A login updates last_login; the login itself is the event.
        audit_register(User, action_prefix="accounts.user", ignored_fields=("last_login",))
        audit_register(Group, action_prefix="accounts.role")
        # Linking a provider account to a user lets whoever holds it sign in as them.
        audit_register(OidcIdentity, action_prefix="accounts.oidc_identity")
