from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import BackendListView, QuantumJobViewSet

router = SimpleRouter(trailing_slash=True)
router.register("jobs", QuantumJobViewSet, basename="job")

urlpatterns = [
    *router.urls,
    path("backends/", BackendListView.as_view(), name="backends"),
]
