"""Top-level URLs: health, metrics, admin, API v1, pages."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("dashboard/", include("apps.quantum.urls")),
    path("system/workers/", include("apps.jobs.urls")),
    path("diagnostics/", include("apps.diagnostics.urls")),
    path("", include("apps.core.urls")),
    path("accounts/", include("apps.accounts.urls")),
    path("account/notifications/", include("apps.notifications.urls")),
    path("account/", include("apps.accounts.account_urls")),
    path("compliance/", include("apps.compliance.urls")),
    path("backups/", include("apps.backups.urls")),
    path("registry/", include("apps.registry.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("project.api_urls")),
    path("", include("django_prometheus.urls")),
]

handler400 = "apps.core.views.errors.bad_request"
handler403 = "apps.core.views.errors.permission_denied"
handler404 = "apps.core.views.errors.page_not_found"
handler500 = "apps.core.views.errors.server_error"
