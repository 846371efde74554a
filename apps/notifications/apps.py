from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "apps.notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from apps.audit.registry import audit_register
        from apps.core.events import notify_dispatcher_set

        from .channels import channel_register
        from .email import EMAIL_CHANNEL
        from .models import EmailRoute
        from .services import event_dispatch

        notify_dispatcher_set(event_dispatch)
        channel_register(EMAIL_CHANNEL)
        # Who is told of what is security-relevant: every change of an organisation route is in the audit trail.
        audit_register(EmailRoute, action_prefix="notifications.email_route")
