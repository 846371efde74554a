from rest_framework.routers import SimpleRouter

from .views import BackupViewSet

router = SimpleRouter(trailing_slash=True)
router.register("", BackupViewSet, basename="backup")

urlpatterns = router.urls
