"""Notifications in the admin, for administrators only: organisation email routes (audited), the events that were
routed to someone and their email deliveries (read-only; failed ones can be sent again)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin

from apps.core.admin_display import json_display
from apps.core.admin_mixins import AdministratorsOnlyAdminMixin, PortalFormatsAdminMixin, ServiceWrittenAdminMixin
from apps.core.choices import Role
from apps.core.events import EVENT_TYPES
from apps.core.permissions import has_role

from .choices import EmailDeliveryStatus
from .email import ROUTE_MAX_ADDRESSES, EmailRouteError, email_deliveries_resend, route_addresses_clean
from .models import EmailDelivery, EmailRoute, Event


class EmailRouteForm(forms.ModelForm):
    addresses = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=f"One address per line (or separated by commas), at most {ROUTE_MAX_ADDRESSES}.",
    )

    class Meta:
        model = EmailRoute
        fields = ["event", "addresses", "active", "note"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["addresses"] = "\n".join(self.instance.addresses)
        self.fields["event"].help_text = "Whatever the users' own choices, the event is also sent to these addresses."

    def clean_addresses(self) -> list[str]:
        try:
            return route_addresses_clean(self.cleaned_data["addresses"])
        except EmailRouteError as error:
            raise forms.ValidationError(error.message) from None


@admin.register(EmailRoute)
class EmailRouteAdmin(AdministratorsOnlyAdminMixin, PortalFormatsAdminMixin, ModelAdmin):
    form = EmailRouteForm
    list_display = ["event_label", "address_list", "active", "note", "updated_at"]
    list_filter = ["event", "active"]
    search_fields = ["note"]
    search_help_text = "Words of the note."

    def has_add_permission(self, request) -> bool:
        return has_role(request.user, Role.ADMIN)

    def has_change_permission(self, request, obj=None) -> bool:
        return has_role(request.user, Role.ADMIN)

    def has_delete_permission(self, request, obj=None) -> bool:
        return has_role(request.user, Role.ADMIN)

    @admin.display(description="Event", ordering="event")
    def event_label(self, route: EmailRoute) -> str:
        return route.get_event_display()

    @admin.display(description="Addresses")
    def address_list(self, route: EmailRoute) -> str:
        return ", ".join(route.addresses)


@admin.register(Event)
class EventAdmin(AdministratorsOnlyAdminMixin, PortalFormatsAdminMixin, ServiceWrittenAdminMixin, ModelAdmin):
    list_display = ["created_at", "name", "summary", "user", "deliveries"]
    list_filter = ["name", "created_at"]
    date_hierarchy = "created_at"
    search_fields = ["id__exact", "object_id__exact"]
    search_help_text = "An event's id or its object's id."
    fields = ["id", "name", "created_at", "summary", "user", "object_type", "object_id", "data_table"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    @admin.display(description="Data")
    def data_table(self, event: Event) -> str:
        return json_display(event.data)

    @admin.display(description="Email deliveries")
    def deliveries(self, event: Event) -> str:
        url = reverse("admin:notifications_emaildelivery_changelist")
        return format_html('<a href="{}?event={}">Emails</a>', url, event.pk)


class EventNameFilter(admin.SimpleListFilter):
    title = "event"
    parameter_name = "event_name"

    def lookups(self, request, model_admin):
        return [(event.name, event.label) for event in EVENT_TYPES.values()]

    def queryset(self, request, queryset):
        return queryset.filter(event__name=self.value()) if self.value() else queryset


@admin.register(EmailDelivery)
class EmailDeliveryAdmin(AdministratorsOnlyAdminMixin, PortalFormatsAdminMixin, ServiceWrittenAdminMixin, ModelAdmin):
    list_display = ["created_at", "event_name", "address", "reason", "status", "attempts", "sent_at", "last_error"]
    list_filter = ["status", EventNameFilter, "reason", "created_at"]
    date_hierarchy = "created_at"
    search_fields = ["address__iexact"]
    search_help_text = "The exact email address."
    actions = ["send_again"]
    fields = [
        "event",
        "address",
        "reason",
        "user",
        "route",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "sent_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("event", "user", "route")

    @admin.display(description="Event", ordering="event__name")
    def event_name(self, delivery: EmailDelivery) -> str:
        return delivery.event.get_name_display()

    @admin.action(description="Send again (failed ones)")
    def send_again(self, request, queryset):
        failed = queryset.filter(status=EmailDeliveryStatus.FAILED)
        skipped = queryset.count() - failed.count()
        count = email_deliveries_resend(delivery_ids=failed.values_list("pk", flat=True), by=request.user)
        queued = f"{count} email{'s' if count != 1 else ''} queued to be sent again."
        self.message_user(request, queued, messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"{skipped} selected email{'s' if skipped != 1 else ''} not failed: left as they were.",
                messages.WARNING,
            )
