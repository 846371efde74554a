from rest_framework.routers import SimpleRouter

from .views import MODEL_NAME_REGEX, InferenceJobViewSet, ModelVersionViewSet, RegisteredModelViewSet

router = SimpleRouter(trailing_slash=True)
router.register("models", RegisteredModelViewSet, basename="model")
router.register(rf"models/(?P<name>{MODEL_NAME_REGEX})/versions", ModelVersionViewSet, basename="version")
router.register("inference-jobs", InferenceJobViewSet, basename="inference-job")

urlpatterns = router.urls
