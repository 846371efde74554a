from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "apps.notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from apps.audit.registry import audit_register
        from apps.core.events import notify_dispatcher_set
        from apps.core.secrets import secret_pattern_register, secret_source_register

        from .channels import Channel, channel_register
        from .email import EMAIL_CHANNEL
        from .live import LIVE_CHANNEL
        from .models import EmailRoute, NotificationPreference, WebhookEndpoint
        from .routing import routing_snapshot_clear
        from .services import event_dispatch
        from .webhook_secrets import SECRET_SHAPE, secrets_stored
        from .webhooks import CHANNEL_NAME, webhooks_audience, webhooks_route, webhooks_want

        notify_dispatcher_set(event_dispatch)
        # Output that leaves the portal (the diagnostics bundle) proves it holds none of the signing secrets.
        secret_source_register("webhook signing secrets", secrets_stored)
        secret_pattern_register("webhook signing secrets", SECRET_SHAPE)
        channel_register(EMAIL_CHANNEL)
        channel_register(LIVE_CHANNEL)
        channel_register(
            Channel(name=CHANNEL_NAME, wants=webhooks_want, route=webhooks_route, audience=webhooks_audience)
        )
        for model in (NotificationPreference, EmailRoute, WebhookEndpoint):
            post_save.connect(routing_snapshot_clear, sender=model, dispatch_uid=f"routing_snapshot_{model.__name__}")
            post_delete.connect(routing_snapshot_clear, sender=model, dispatch_uid=f"routing_delete_{model.__name__}")
        # Who is told of what is security-relevant: every change of an organisation route is in the audit trail.
        audit_register(EmailRoute, action_prefix="notifications.email_route")
        # Created, changed, deleted, wherever it happens; the failure bookkeeping is written with update(), unseen.
        audit_register(WebhookEndpoint, action_prefix="notifications.webhook_endpoint")
