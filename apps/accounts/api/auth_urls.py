from rest_framework.routers import DefaultRouter

from .token_views import ApiTokenViewSet

router = DefaultRouter()
router.include_root_view = False
router.register("tokens", ApiTokenViewSet, basename="token")

urlpatterns = router.urls
