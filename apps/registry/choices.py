from django.db import models


class ModelTask(models.TextChoices):
    TEXT_CLASSIFICATION = "text-classification", "Text classification"
    TOKEN_CLASSIFICATION = "token-classification", "Token classification"
    FILL_MASK = "fill-mask", "Fill mask"
    FEATURE_EXTRACTION = "feature-extraction", "Feature extraction"
    TEXT_GENERATION = "text-generation", "Text generation"
    SUMMARIZATION = "summarization", "Summarization"


class VersionStatus(models.TextChoices):
    VALIDATING = "validating", "Validating"
    READY = "ready", "Ready"
    INVALID = "invalid", "Invalid"


class InferenceKind(models.TextChoices):
    BATCH = "batch", "Batch inference"
    EVALUATION = "evaluation", "Evaluation (with labels)"


class AliasAction(models.TextChoices):
    """What a change of an alias did; kept in its history."""

    SET = "set", "Set to one version"
    SPLIT = "split", "Split between two versions"
    PROMOTE = "promote", "Promoted"
    ROLLBACK = "rollback", "Rolled back"
    DELETE = "delete", "Removed"
