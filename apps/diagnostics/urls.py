from django.urls import path

from . import views

app_name = "diagnostics_page"

urlpatterns = [
    path("", views.download, name="download"),
]
