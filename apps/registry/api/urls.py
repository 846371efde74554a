from rest_framework.routers import SimpleRouter

from .views import (
    MODEL_NAME_REGEX,
    InferenceJobViewSet,
    ModelAliasViewSet,
    ModelVersionViewSet,
    RegisteredModelViewSet,
)

router = SimpleRouter(trailing_slash=True)
router.register("models", RegisteredModelViewSet, basename="model")
router.register(rf"models/(?P<name>{MODEL_NAME_REGEX})/versions", ModelVersionViewSet, basename="version")
router.register(rf"models/(?P<name>{MODEL_NAME_REGEX})/aliases", ModelAliasViewSet, basename="alias")
router.register("inference-jobs", InferenceJobViewSet, basename="inference-job")

urlpatterns = router.urls
