"""Single sign-on identities in the admin: who is linked to which provider account (imported by accounts/admin.py).

Linking lets an administrator admit a provider user when OIDC_CREATE_USERS is off; since whoever holds that provider
account then signs in as the local user, adding, changing or removing a link needs a fresh second factor.
"""

from django.contrib import admin, messages
from unfold.admin import ModelAdmin

from ..sudo import sudo_redirect, sudo_second_factor_fresh
from .models import OidcIdentity


@admin.register(OidcIdentity)
class OidcIdentityAdmin(ModelAdmin):
    list_display = ["user", "subject", "issuer", "last_login", "created"]
    list_select_related = ["user"]
    search_fields = ["user__username", "subject", "issuer"]
    list_filter = ["issuer"]
    autocomplete_fields = ["user"]
    readonly_fields = ["created", "last_login", "last_groups", "last_amr"]

    def _refuse_without_second_factor(self, request):
        if request.method == "POST" and not sudo_second_factor_fresh(request):
            self.message_user(
                request,
                "Nothing was saved: linking sign-in identities needs your password and a fresh authenticator code. "
                "Confirm them here, then make the change again.",
                messages.ERROR,
            )
            return sudo_redirect(request, request.get_full_path())
        return None

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        refusal = self._refuse_without_second_factor(request)
        return refusal or super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        refusal = self._refuse_without_second_factor(request)
        return refusal or super().delete_view(request, object_id, extra_context)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one at a time, behind the second factor
        return actions
