from django.urls import path

from .consumers import JobConsumer, JobsConsumer

websocket_urlpatterns = [
    path("ws/jobs/", JobsConsumer.as_asgi()),
    path("ws/jobs/<int:job_id>/", JobConsumer.as_asgi()),
    path("ws/jobs/<slug:kind>/<int:job_id>/", JobConsumer.as_asgi()),
]
