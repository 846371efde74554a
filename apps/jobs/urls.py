from django.urls import path

from . import views

app_name = "workers_page"

urlpatterns = [
    path("", views.workers, name="index"),
    path("drain/", views.drain, name="drain"),
    path("jobs/<slug:kind>/<int:job_id>/cancel/", views.cancel, name="job-cancel"),
]
