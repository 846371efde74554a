from django.urls import path

from .views import health, pages

urlpatterns = [
    path("", pages.home, name="home"),
    path("health/ready", health.ready, name="health-ready"),
    path("system/", pages.system, name="system"),
]
