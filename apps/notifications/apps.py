from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "apps.notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from apps.core.events import notify_dispatcher_set

        from .services import event_dispatch

        notify_dispatcher_set(event_dispatch)
