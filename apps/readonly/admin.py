"""Maintenance mode in the admin: the switch (one page) and the planned windows, for staff administrators inside
the sudo window. Every change goes through apps/readonly/services.py (validated and audited there)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse
from unfold.admin import ModelAdmin

from apps.accounts.sudo import sudo_admin_action_check, sudo_is_fresh, sudo_redirect
from apps.core.admin_mixins import PortalFormatsAdminMixin
from apps.core.errors import ApplicationError

from .models import MaintenanceMode, MaintenanceWindow
from .services import (
    MaintenanceError,
    maintenance_may_change,
    maintenance_message_clean,
    maintenance_mode_disable,
    maintenance_mode_enable,
    maintenance_mode_status,
    maintenance_until_check,
    maintenance_window_cancel,
    maintenance_window_check,
    maintenance_window_schedule,
)

SUDO_MESSAGE = (
    "Nothing was changed: maintenance mode needs a fresh password (and authenticator code) confirmation. "
    "Confirm them, then save again."
)


def _form_error(form: forms.Form, error: MaintenanceError, default_field: str) -> None:
    field = error.field if error.field in form.fields else default_field
    form.add_error(field, error.message)


class _SudoAdminMixin:
    """Staff administrators only; a save outside the sudo window is refused before anything changes."""

    def has_module_permission(self, request) -> bool:
        return maintenance_may_change(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return maintenance_may_change(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and not sudo_is_fresh(request):
            if not maintenance_may_change(request.user):
                raise PermissionDenied
            self.message_user(request, SUDO_MESSAGE, messages.ERROR)
            return sudo_redirect(request, request.get_full_path())
        return super().changeform_view(request, object_id, form_url, extra_context)


class MaintenanceModeForm(forms.ModelForm):
    class Meta:
        model = MaintenanceMode
        fields = ["enabled", "message", "until"]
        labels = {"enabled": "On"}
        help_texts = {
            "enabled": "While on, writes answer 503, workers take no new jobs and every page shows a banner.",
            "until": f"When it ends by itself, in the portal's time zone ({settings.TIME_ZONE}); empty: until "
            "someone turns it off.",
        }

    def clean(self):
        data = super().clean()
        try:
            data["message"] = maintenance_message_clean(data.get("message", ""))
            if data.get("enabled"):
                maintenance_until_check(data.get("until"))
        except MaintenanceError as exc:
            _form_error(self, exc, "until")
        return data


@admin.register(MaintenanceMode)
class MaintenanceModeAdmin(_SudoAdminMixin, PortalFormatsAdminMixin, ModelAdmin):
    """One page: the switch. Its list goes straight to it."""

    form = MaintenanceModeForm
    fields = ["enabled", "message", "until", "state", "since", "changed_by", "changed_at"]
    readonly_fields = ["state", "since", "changed_by", "changed_at"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return maintenance_may_change(request.user)

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        switch, _ = MaintenanceMode.objects.get_or_create(pk=MaintenanceMode.SINGLETON_PK)
        return HttpResponseRedirect(reverse("admin:readonly_maintenancemode_change", args=[switch.pk]))

    @admin.display(description="Now")
    def state(self, obj: MaintenanceMode) -> str:
        status = maintenance_mode_status()
        if not status.active:
            return "Off"
        return f"On ({'planned window' if status.source == 'window' else 'switched on'}): {status.message}"

    def save_model(self, request, obj: MaintenanceMode, form, change) -> None:
        # The service writes the row (and the audit event); the form only carried the values.
        data = form.cleaned_data
        if data["enabled"]:
            maintenance_mode_enable(actor=request.user, message=data["message"], until=data["until"], via="admin")
            self.message_user(request, "Maintenance mode is on: writes are refused and workers take no new jobs.")
        else:
            maintenance_mode_disable(actor=request.user, via="admin")
            self.message_user(request, "Maintenance mode is off; jobs held during it are sent to the workers.")

    def message_user(self, request, message, level=messages.INFO, *args, **kwargs):
        # The admin's own "was changed successfully" says nothing here: the service's message replaces it.
        if "was changed successfully" in str(message):
            return
        super().message_user(request, message, level, *args, **kwargs)

    def response_change(self, request, obj):
        return HttpResponseRedirect(reverse("admin:readonly_maintenancemode_change", args=[obj.pk]))


class MaintenanceWindowForm(forms.ModelForm):
    class Meta:
        model = MaintenanceWindow
        fields = ["starts_at", "ends_at", "message"]
        help_texts = {
            "starts_at": f"In the portal's time zone ({settings.TIME_ZONE}). The banner announces it a day before.",
            "ends_at": f"In the portal's time zone ({settings.TIME_ZONE}); at most 7 days after the start.",
            "message": "Shown on the banner and in every refusal; empty: a general message.",
        }

    def clean(self):
        data = super().clean()
        try:
            data["message"] = maintenance_message_clean(data.get("message", ""))
            if data.get("starts_at") and data.get("ends_at"):
                maintenance_window_check(data["starts_at"], data["ends_at"])
        except MaintenanceError as exc:
            _form_error(self, exc, "ends_at")
        return data


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(_SudoAdminMixin, PortalFormatsAdminMixin, ModelAdmin):
    """Planned windows: added here (announced on the banner a day ahead), cancelled with the list's action; kept
    afterwards as a record."""

    form = MaintenanceWindowForm
    list_display = ["id", "starts_at", "ends_at", "message", "state", "created_by"]
    list_select_related = ["created_by", "cancelled_by"]
    actions = ["cancel_windows"]
    readonly_fields = ["created_at", "created_by", "cancelled_at", "cancelled_by"]

    def get_fields(self, request, obj=None):
        # A new window has no record yet of who made or cancelled it.
        fields = ["starts_at", "ends_at", "message"]
        return fields if obj is None else [*fields, *self.readonly_fields]

    def has_add_permission(self, request) -> bool:
        return maintenance_may_change(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="State")
    def state(self, window: MaintenanceWindow) -> str:
        from django.utils import timezone

        now = timezone.now()
        if window.cancelled_at:
            return "Cancelled"
        if window.ends_at <= now:
            return "Over"
        return "Running" if window.starts_at <= now else "Planned"

    def save_model(self, request, obj: MaintenanceWindow, form, change) -> None:
        data = form.cleaned_data
        window = maintenance_window_schedule(
            actor=request.user,
            starts_at=data["starts_at"],
            ends_at=data["ends_at"],
            message=data["message"],
            via="admin",
        )
        # The admin logs and redirects with the object it saved.
        obj.pk = window.pk

    @admin.action(description="Cancel the selected maintenance windows")
    def cancel_windows(self, request, queryset):
        if not maintenance_may_change(request.user):
            raise PermissionDenied
        if (response := sudo_admin_action_check(self, request)) is not None:
            return response
        for window in queryset:
            try:
                maintenance_window_cancel(actor=request.user, window_id=window.pk, via="admin")
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.WARNING)
            else:
                self.message_user(request, f"Cancelled {window}.", messages.SUCCESS)
        return None
