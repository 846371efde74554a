from django.db import models


class MaintenanceStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Role(models.TextChoices):
    """Roles are Django groups of these names.

    Kept in core, the ground layer, because every app checks roles: audit sits below accounts and must reach
    them without importing it.
    """

    ADMIN = "admin", "Administrator"
    OPERATOR = "operator", "Operator"
    VIEWER = "viewer", "Viewer"
    COMPLIANCE = "compliance", "Compliance officer"
