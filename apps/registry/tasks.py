"""Celery tasks of the model registry: doors into its services."""

from celery import shared_task

from . import services


@shared_task(name="registry.validate_version")
def validate_version(version_id: int) -> str:
    """Load a newly uploaded version offline and mark it ready or invalid."""
    return services.version_validate(version_id=version_id)
