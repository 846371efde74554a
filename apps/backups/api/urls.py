from rest_framework.routers import SimpleRouter

from .views import BackupJobViewSet, BackupViewSet

router = SimpleRouter(trailing_slash=True)
router.register("jobs", BackupJobViewSet, basename="backup-job")
router.register("", BackupViewSet, basename="backup")

urlpatterns = router.urls
