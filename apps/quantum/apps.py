from django.apps import AppConfig


class QuantumConfig(AppConfig):
    name = "apps.quantum"
    verbose_name = "Quantum jobs"
    default_auto_field = "django.db.models.BigAutoField"
