from rest_framework.routers import SimpleRouter

from .views import AuditEventViewSet

# No format-suffix routes: on the export, `format` names the file format (csv, jsonl).
router = SimpleRouter(trailing_slash=True)
router.register("events", AuditEventViewSet, basename="event")

urlpatterns = router.urls
