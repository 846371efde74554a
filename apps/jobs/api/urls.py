from django.urls import path

from .views import JobCancelView, QueuesView, WorkerDrainView, WorkersView

urlpatterns = [
    path("", WorkersView.as_view(), name="workers"),
    path("queues/", QueuesView.as_view(), name="queues"),
    path("drain/", WorkerDrainView.as_view(), name="drain"),
    path("jobs/<slug:kind>/<int:job_id>/cancel/", JobCancelView.as_view(), name="job-cancel"),
]
