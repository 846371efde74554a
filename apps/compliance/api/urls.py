from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import PublicKeyView, ReportViewSet

router = SimpleRouter(trailing_slash=True)
router.register("reports", ReportViewSet, basename="report")

urlpatterns = [
    path("public-key/", PublicKeyView.as_view(), name="public-key"),
    *router.urls,
]
