from django.apps import AppConfig


class DiagnosticsConfig(AppConfig):
    """The diagnostics bundle: it reads every app, so it sits on the top layer and nothing imports it."""

    name = "apps.diagnostics"
    label = "diagnostics"
    verbose_name = "Diagnostics"
