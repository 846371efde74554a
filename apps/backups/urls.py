"""The backups pages, mounted at /backups/ (the API's routes are in apps/backups/api/urls.py)."""

from django.urls import path

from . import views

app_name = "backups_page"

urlpatterns = [
    path("", views.index, name="index"),
    path("create/", views.create, name="create"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/verify/", views.verify, name="verify"),
    path("<int:pk>/restore/", views.restore, name="restore"),
    path("<int:pk>/download/", views.download, name="download"),
    path("<int:pk>/manifest/", views.manifest, name="manifest"),
    path("jobs/<int:pk>/", views.job, name="job"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job-cancel"),
]
