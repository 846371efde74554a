"""Celery tasks of the portal core."""

from . import services
from .maintenance import maintenance_task

session_clear_expired = maintenance_task("session_clear_expired", services.session_clear_expired)
