from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.template.defaultfilters import pluralize
from django_otp_webauthn.models import WebAuthnCredential
from unfold.admin import ModelAdmin
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from apps.core.admin_mixins import PortalFormatsAdminMixin
from apps.core.request_context import current_request

from . import selectors, services, sessions
from .models import User
from .passkeys import passkey_remove
from .sudo import sudo_admin_action_check, sudo_redirect, sudo_second_factor_fresh
from .tokens import tokens_revoke_all

PRIVILEGE_FIELDS = frozenset({"is_staff", "is_superuser", "groups", "user_permissions"})
PRIVILEGE_M2M = ("groups", "user_permissions")
NEEDS_SECOND_FACTOR = (
    "Nothing was saved: {what} needs your password and a fresh authenticator code. "
    "Confirm them here, then make the change again."
)


def _needs_second_factor(model_admin, request, what: str):
    """Refuse, saying why, and send the administrator to re-authenticate, coming back to this page."""
    model_admin.message_user(request, NEEDS_SECOND_FACTOR.format(what=what), messages.ERROR)
    return sudo_redirect(request, request.get_full_path())


class ServicePasswordForm(AdminPasswordChangeForm):
    """Django's admin form for a user's password, saved through ``services.user_password_change``."""

    def save(self, commit=True):
        usable = self.cleaned_data["set_usable_password"]
        # Django's admin view builds this form without the request; the request context middleware holds it.
        services.user_password_change(
            user=self.user, password=self.cleaned_data["password1"] if usable else None, request=current_request.get()
        )
        return self.user


@admin.register(User)
class UserAdmin(PortalFormatsAdminMixin, DjangoUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = ServicePasswordForm
    list_display = [
        "username",
        "email",
        "roles",
        "mfa_status",
        "last_login",
        "locked_out_status",
        "token_count",
        "active",
        "staff",
        "superuser",
    ]
    list_filter = ["is_active", "is_staff", "is_superuser", "groups"]
    actions = ["unlock", "revoke_tokens", "deactivate", "reset_mfa"]

    def get_queryset(self, request):
        return selectors.users_with_account_state(super().get_queryset(request).prefetch_related("groups"))

    # --- Privileges and passwords: only with a fresh second factor, through the services

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """Refuse a privilege change outside the sudo window before anything is saved, and re-authenticate."""
        if request.method == "POST" and object_id is not None and not sudo_second_factor_fresh(request):
            user = self.get_object(request, unquote(object_id))
            if user is not None and self.has_change_permission(request, user):
                form = self.get_form(request, user, change=True)(request.POST, request.FILES, instance=user)
                if PRIVILEGE_FIELDS.intersection(form.changed_data):
                    return _needs_second_factor(self, request, "changing roles, permissions, staff or superuser status")
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if change:
            # The privilege flags are the service's to set (in save_related, audited): this save keeps the stored ones.
            stored = User.objects.values("is_staff", "is_superuser").get(pk=obj.pk)
            obj.is_staff, obj.is_superuser = stored["is_staff"], stored["is_superuser"]
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        if not change:
            super().save_related(request, form, formsets, change)
            return
        # form.save_m2m() sets only the fields left in cleaned_data: the roles and permissions go to the service.
        requested = {name: form.cleaned_data.pop(name) for name in PRIVILEGE_M2M if name in form.cleaned_data}
        super().save_related(request, form, formsets, change)
        user, data = form.instance, form.cleaned_data
        services.user_privileges_change(
            user=user,
            actor=request.user,
            is_staff=data.get("is_staff", user.is_staff),
            is_superuser=data.get("is_superuser", user.is_superuser),
            roles=requested.get("groups", user.groups.all()),
            permissions=requested.get("user_permissions", user.user_permissions.all()),
            request=request,
        )

    def user_change_password(self, request, id, form_url=""):
        """Setting a password needs a fresh second factor: without one, re-authenticate first and come back."""
        if not sudo_second_factor_fresh(request):
            if request.method == "POST":
                return _needs_second_factor(self, request, "setting a password")
            return sudo_redirect(request, request.get_full_path())
        old_key = request.session.session_key
        response = super().user_change_password(request, id, form_url)
        # Django's view gives the administrator's session a new key after a change.
        sessions.session_list_entry_rekey(old_key=old_key, new_key=request.session.session_key)
        return response

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

    # One word each (the fields' names say "status"), so that every column fits a laptop's width.
    @admin.display(description="Active", boolean=True, ordering="is_active")
    def active(self, obj: User) -> bool:
        return obj.is_active

    @admin.display(description="Staff", boolean=True, ordering="is_staff")
    def staff(self, obj: User) -> bool:
        return obj.is_staff

    @admin.display(description="Superuser", boolean=True, ordering="is_superuser")
    def superuser(self, obj: User) -> bool:
        return obj.is_superuser

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
            services.mfa_remove(user=user, actor=request.user, include_passkeys=True)
        self._report(request, len(queryset), "had their authenticator, passkeys and recovery codes removed")
        return None


admin.site.unregister(Group)


@admin.register(Group)
class RoleAdmin(GroupAdmin, ModelAdmin):
    """Roles: what a role may do is a privilege of everyone holding it, so creating, changing or deleting one
    needs a fresh second factor, as granting a role to a user does."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and not sudo_second_factor_fresh(request):
            return _needs_second_factor(self, request, "changing what a role may do")
        return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        if request.method == "POST" and not sudo_second_factor_fresh(request):
            return _needs_second_factor(self, request, "deleting a role")
        return super().delete_view(request, object_id, extra_context)

    def get_actions(self, request):
        # The bulk "delete selected" would go around delete_view.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(WebAuthnCredential)
class PasskeyAdmin(ModelAdmin):
    """Everyone's passkeys, read-only: users register their own on /account/. Removing one (a lost device) takes a
    fresh second factor and goes through ``passkeys.passkey_remove``, which audits it."""

    list_display = ("user", "name", "created_at", "last_used_at", "discoverable")
    list_filter = ("discoverable",)
    search_fields = ("user__username", "name")
    list_select_related = ("user",)
    fields = ("user", "name", "created_at", "last_used_at", "discoverable", "backup_eligible", "aaguid", "transports")
    readonly_fields = fields
    actions = None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_view(self, request, object_id, extra_context=None):
        if not sudo_second_factor_fresh(request):
            return _needs_second_factor(self, request, "removing a passkey")
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request, obj):
        passkey_remove(user=obj.user, passkey_id=obj.pk, request=request, actor=request.user)


from .oidc import admin as oidc_admin  # noqa: E402, F401 - registers single sign-on identities
