"""Webhooks in the admin, for administrators: endpoints (the signing secret shown once when created or rotated)
and the read-only delivery log with its "redeliver" action. Both are doors into apps/notifications/webhooks.py."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget, UnfoldAdminURLInputWidget

from apps.core.admin_display import json_display
from apps.core.admin_mixins import AdministratorsOnlyAdminMixin, PortalFormatsAdminMixin, ServiceWrittenAdminMixin
from apps.core.events import EVENT_TYPES

from . import webhooks
from .models import WebhookDelivery, WebhookEndpoint

SECRET_SESSION_KEY = "webhook_secret_shown_once"  # noqa: S105 (a session key's name)
PAGE_TEMPLATE = "admin/notifications/webhookendpoint/secret.html"
SHOWN_ONCE_MESSAGE = "The signing secret was shown once and is gone; rotate it if it was not saved."


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(
        label="URL",
        max_length=2000,
        assume_scheme="https",
        widget=UnfoldAdminURLInputWidget,
        help_text=WebhookEndpoint._meta.get_field("url").help_text,
    )
    events = forms.MultipleChoiceField(
        choices=[(event.name, f"{event.label} ({event.name})") for event in EVENT_TYPES.values()],
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text="The events POSTed to this endpoint (the README's Webhooks section describes each payload).",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "events", "active"]

    def clean_url(self) -> str:
        try:
            return webhooks.webhook_url_clean(self.cleaned_data["url"])
        except webhooks.WebhookError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_events(self) -> list[str]:
        try:
            return webhooks.webhook_events_clean(self.cleaned_data["events"])
        except webhooks.WebhookError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(AdministratorsOnlyAdminMixin, PortalFormatsAdminMixin, ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["name", "host", "active", "event_list", "consecutive_failures", "disabled_at", "owner"]
    list_filter = ["active"]
    search_fields = ["name", "url"]
    list_select_related = ["owner"]
    readonly_fields = ["owner", "created_at", "consecutive_failures", "disabled_at", "disabled_reason"]
    fieldsets = [
        (None, {"fields": ["name", "url", "events", "active"]}),
        ("State", {"fields": ["owner", "created_at", "consecutive_failures", "disabled_at", "disabled_reason"]}),
    ]
    add_fieldsets = [(None, {"fields": ["name", "url", "events", "active"]})]

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.add_fieldsets
        return super().get_fieldsets(request, obj)

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("<path:object_id>/secret/", self.admin_site.admin_view(self.secret_view), name=f"{prefix}_secret"),
            path(
                "<path:object_id>/rotate-secret/",
                self.admin_site.admin_view(self.rotate_secret_view),
                name=f"{prefix}_rotate_secret",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="Host", ordering="url")
    def host(self, endpoint: WebhookEndpoint) -> str:
        return endpoint.url.split("://", 1)[-1].split("/", 1)[0]

    @admin.display(description="Events")
    def event_list(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.events) or "—"

    # --- Saving through the services; the new secret is shown once

    def save_model(self, request, obj, form, change):
        if change:
            webhooks.webhook_endpoint_update(endpoint=obj)
            return
        created, secret = webhooks.webhook_endpoint_create(
            name=obj.name, url=obj.url, events=obj.events, owner=request.user, active=obj.active
        )
        # The admin goes on with ``obj`` (history entry, redirect): make it the created row.
        obj.__dict__.update({key: value for key, value in created.__dict__.items() if key != "_state"})
        obj._state.adding = False
        request.session[SECRET_SESSION_KEY] = {"id": created.pk, "secret": secret}

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(request, f"Webhook endpoint {obj} created.", messages.SUCCESS)
        return redirect(f"admin:{self.opts.app_label}_{self.opts.model_name}_secret", obj.pk)

    def secret_view(self, request, object_id):
        """Show a new signing secret once: it leaves the session as this page is rendered (admin_view makes
        the page uncacheable)."""
        endpoint = self.get_object(request, unquote(object_id))
        if endpoint is None or not self.has_change_permission(request, endpoint):
            raise PermissionDenied
        shown = request.session.pop(SECRET_SESSION_KEY, None)
        if not shown or shown["id"] != endpoint.pk:
            self.message_user(request, SHOWN_ONCE_MESSAGE, messages.INFO)
            return redirect("admin:notifications_webhookendpoint_change", endpoint.pk)
        return TemplateResponse(request, PAGE_TEMPLATE, self._page_context(request, endpoint, secret=shown["secret"]))

    def rotate_secret_view(self, request, object_id):
        """Confirm (GET), then give the endpoint a new secret at once (POST) and show it once."""
        endpoint = self.get_object(request, unquote(object_id))
        if endpoint is None or not self.has_change_permission(request, endpoint):
            raise PermissionDenied
        if request.method == "POST":
            secret = webhooks.webhook_secret_rotate(endpoint=endpoint, actor=request.user)
            request.session[SECRET_SESSION_KEY] = {"id": endpoint.pk, "secret": secret}
            return redirect("admin:notifications_webhookendpoint_secret", endpoint.pk)
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET", "POST"])
        return TemplateResponse(request, PAGE_TEMPLATE, self._page_context(request, endpoint, confirm=True))

    def _page_context(self, request, endpoint, **extra) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "endpoint": endpoint,
            "title": f"Signing secret of {endpoint}",
            **extra,
        }


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(AdministratorsOnlyAdminMixin, PortalFormatsAdminMixin, ServiceWrittenAdminMixin, ModelAdmin):
    """The delivery log: every event sent to every endpoint, its attempts and the last answer."""

    list_display = [
        "created_at", "event_name", "endpoint", "status", "attempts", "response_code", "latency",
        "last_attempt_at", "next_attempt_at",
    ]  # fmt: skip
    list_filter = ["status", "endpoint", "event__name", "created_at"]
    list_select_related = ["endpoint", "event"]
    search_fields = ["=id", "=event__id"]
    date_hierarchy = "created_at"
    actions = ["redeliver"]
    fields = [
        "id", "event_name", "event_id_shown", "endpoint", "status", "attempts", "response_code", "latency", "error",
        "created_at", "first_attempt_at", "last_attempt_at", "next_attempt_at", "redelivery_of", "payload",
    ]  # fmt: skip
    readonly_fields = fields

    @admin.display(description="Event", ordering="event__name")
    def event_name(self, delivery: WebhookDelivery) -> str:
        return delivery.event.name

    @admin.display(description="Event id (payload id)")
    def event_id_shown(self, delivery: WebhookDelivery) -> str:
        return str(delivery.event_id)

    @admin.display(description="Latency", ordering="latency_ms")
    def latency(self, delivery: WebhookDelivery) -> str:
        return f"{delivery.latency_ms} ms" if delivery.latency_ms is not None else "—"

    @admin.display(description="Data sent")
    def payload(self, delivery: WebhookDelivery) -> str:
        return json_display(delivery.event.data, label_keys=False)

    def has_redeliver_permission(self, request) -> bool:
        return self._administrator(request)

    @admin.action(description="Redeliver selected deliveries (each as a new delivery)", permissions=["redeliver"])
    def redeliver(self, request, queryset):
        sent = 0
        for delivery in queryset.select_related("endpoint", "event"):
            try:
                again = webhooks.webhook_redeliver(delivery=delivery, actor=request.user)
            except webhooks.WebhookError as exc:
                self.message_user(request, f"{delivery} was not redelivered: {exc}", messages.ERROR)
            else:
                sent += 1
                url = reverse("admin:notifications_webhookdelivery_change", args=[again.pk])
                self.message_user(
                    request, format_html('<a href="{}">Redelivery of {}</a> queued.', url, delivery), messages.SUCCESS
                )
        if sent > 1:
            self.message_user(request, f"{sent} deliver{pluralize(sent, 'y,ies')} queued again.", messages.SUCCESS)
