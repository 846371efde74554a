from django.urls import path

from .views import DiagnosticsBundleView

urlpatterns = [
    path("", DiagnosticsBundleView.as_view(), name="bundle"),
]
