"""API v1: one namespaced router per app, plus the OpenAPI schema and its docs."""

from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.core.api.views import ApiRootView

urlpatterns = [
    path("", ApiRootView.as_view(), name="api-root"),
    # Maintenance mode lives in its own app (apps.readonly) but reads, for clients, as part of the core API.
    path("core/maintenance/", include(("apps.readonly.api.urls", "readonly"), namespace="readonly")),
    # The workers and queues view lives in the job layer (apps/jobs); operators find it beside the core's endpoints.
    path("core/workers/", include(("apps.jobs.api.urls", "workers"), namespace="workers")),
    path("core/diagnostics/", include(("apps.diagnostics.api.urls", "diagnostics"), namespace="diagnostics")),
    path("core/", include(("apps.core.api.urls", "core"), namespace="core")),
    path("accounts/", include(("apps.accounts.api.urls", "accounts"), namespace="accounts")),
    path("auth/", include(("apps.accounts.api.auth_urls", "auth"), namespace="auth")),
    path("audit/", include(("apps.audit.api.urls", "audit"), namespace="audit")),
    path("quantum/", include(("apps.quantum.api.urls", "quantum"), namespace="quantum")),
    path("registry/", include(("apps.registry.api.urls", "registry"), namespace="registry")),
    path("backups/", include(("apps.backups.api.urls", "backups"), namespace="backups")),
    path("compliance/", include(("apps.compliance.api.urls", "compliance"), namespace="compliance")),
    path("notifications/", include(("apps.notifications.api.urls", "notifications"), namespace="notifications")),
    path("schema/", SpectacularAPIView.as_view(api_version="v1"), name="api-schema"),
    # People open the docs in a browser: send them to the login page rather than a bare 403.
    # Swagger UI inside the portal's shell (templates/api/docs.html), with its sidebar to go back.
    path(
        "docs/",
        login_required(SpectacularSwaggerView.as_view(url_name="api-schema", template_name="api/docs.html")),
        name="api-docs",
    ),
]
