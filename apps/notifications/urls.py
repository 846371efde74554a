"""Pages of notifications, under /account/notifications/."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.notification_preferences, name="notification-preferences"),
]
