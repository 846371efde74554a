from django.db import models


class Role(models.TextChoices):
    """Roles are Django groups of these names."""

    ADMIN = "admin", "Administrator"
    OPERATOR = "operator", "Operator"
    VIEWER = "viewer", "Viewer"
    COMPLIANCE = "compliance", "Compliance officer"
