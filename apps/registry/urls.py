"""The registry's portal pages, mounted at /registry/ (the API's routes are in apps/registry/api/urls.py)."""

from django.urls import path, register_converter

from . import views
from .models import NAME_PATTERN


class ModelNameConverter:
    regex = NAME_PATTERN.removeprefix("^").removesuffix("$")

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ModelNameConverter, "model_name")

app_name = "registry_page"

urlpatterns = [
    path("", views.model_list, name="index"),
    path("jobs/<int:pk>/result/", views.job_result, name="job-result"),
    path("<model_name:name>/", views.model_detail, name="model"),
    path("<model_name:name>/aliases/move/", views.alias_move_view, name="alias-move"),
    path("<model_name:name>/aliases/<model_name:alias>/<slug:action>/", views.alias_action_view, name="alias-action"),
    path("<model_name:name>/jobs/", views.job_start, name="job-start"),
    path("<model_name:name>/versions/", views.version_upload_view, name="version-upload"),
]
