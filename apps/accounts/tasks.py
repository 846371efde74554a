"""Celery tasks of accounts."""

from apps.core.maintenance import maintenance_task

from . import services

lockout_records_clear_expired = maintenance_task("lockout_clear_expired", services.lockout_records_clear_expired)
