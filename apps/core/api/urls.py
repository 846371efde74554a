from rest_framework.routers import DefaultRouter

from .views import MaintenanceRunViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("maintenance-runs", MaintenanceRunViewSet, basename="maintenance-run")

urlpatterns = router.urls
