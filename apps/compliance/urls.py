"""The compliance officer's page, mounted at /compliance/ (the API's routes are in apps/compliance/api/urls.py)."""

from django.urls import path

from . import views

app_name = "compliance_page"

urlpatterns = [
    path("", views.index, name="index"),
    path("reports/<int:pk>/", views.detail, name="detail"),
    path("reports/<int:pk>/manifest/", views.manifest, name="manifest"),
    path("reports/<int:pk>/download/", views.download, name="download"),
]
