"""Dashboard pages, mounted at /dashboard/ (the API's routes are in apps/quantum/api/urls.py)."""

from django.urls import path

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.dashboard, name="index"),
    path("status-counts/", views.status_counts_json, name="status-counts"),
    path("jobs/<int:pk>/", views.job_detail, name="job"),
    path("jobs/<int:pk>/row/", views.job_row, name="job-row"),
    path("jobs/<int:pk>/result/", views.job_result, name="job-result"),
    path("jobs/<int:pk>/cancel/", views.job_cancel_view, name="job-cancel"),
]
