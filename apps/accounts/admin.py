from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.template.defaultfilters import pluralize

from . import selectors, services
from .models import User
from .sudo import sudo_admin_action_check
from .tokens import tokens_revoke_all


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = [
        "username",
        "email",
        "roles",
        "mfa_status",
        "last_login",
        "locked_out_status",
        "token_count",
        "is_active",
        "is_staff",
        "is_superuser",
    ]
    list_filter = ["is_active", "is_staff", "is_superuser", "groups"]
    actions = ["unlock", "revoke_tokens", "deactivate", "reset_mfa"]

    def get_queryset(self, request):
        return selectors.users_with_account_state(super().get_queryset(request).prefetch_related("groups"))

    @admin.display(description="Roles")
    def roles(self, obj: User) -> str:
        return ", ".join(obj.role_names) or "—"

    @admin.display(description="MFA", boolean=True, ordering="mfa_enabled")
    def mfa_status(self, obj: User) -> bool:
        return obj.mfa_enabled

    @admin.display(description="Locked out", boolean=True, ordering="locked_out")
    def locked_out_status(self, obj: User) -> bool:
        return obj.locked_out

    @admin.display(description="API tokens", ordering="live_tokens")
    def token_count(self, obj: User) -> int:
        return obj.live_tokens

    def _report(self, request, count: int, verb: str) -> None:
        self.message_user(request, f"{count} user{pluralize(count)} {verb}.", messages.SUCCESS)

    @admin.action(description="Unlock selected users (clear failed sign-ins)", permissions=["change"])
    def unlock(self, request, queryset):
        for user in queryset:
            services.user_unlock(user=user, actor=request.user)
        self._report(request, len(queryset), "unlocked")

    @admin.action(description="Revoke all API tokens of selected users", permissions=["change"])
    def revoke_tokens(self, request, queryset):
        revoked = sum(tokens_revoke_all(owner=user, by=request.user) for user in queryset)
        self.message_user(request, f"{revoked} token{pluralize(revoked)} revoked.", messages.SUCCESS)

    @admin.action(description="Deactivate selected users", permissions=["change"])
    def deactivate(self, request, queryset):
        if queryset.filter(pk=request.user.pk).exists():
            self.message_user(request, "You cannot deactivate your own account.", messages.ERROR)
            return None
        count = sum(services.user_deactivate(user=user, actor=request.user) for user in queryset)
        self._report(request, count, "deactivated")
        return None

    @admin.action(description="Reset MFA of selected users (needs re-authentication)", permissions=["change"])
    def reset_mfa(self, request, queryset):
        if (response := sudo_admin_action_check(self, request)) is not None:
            return response
        for user in queryset:
            services.mfa_remove(user=user, actor=request.user)
        self._report(request, len(queryset), "had their authenticator and recovery codes removed")
        return None
