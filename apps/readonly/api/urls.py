from django.urls import path

from .views import MaintenanceView, MaintenanceWindowCancelView, MaintenanceWindowsView

urlpatterns = [
    path("", MaintenanceView.as_view(), name="status"),
    path("windows/", MaintenanceWindowsView.as_view(), name="windows"),
    path("windows/<int:pk>/cancel/", MaintenanceWindowCancelView.as_view(), name="window-cancel"),
]
