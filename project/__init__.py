"""Opsdeck project package; importing it makes the Celery app the default app."""

from .celery import app as celery_app

__all__ = ("celery_app",)
