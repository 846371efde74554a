"""Celery tasks of accounts."""

from apps.core.maintenance import maintenance_task

from . import services, sessions, tokens

lockout_records_clear_expired = maintenance_task("lockout_clear_expired", services.lockout_records_clear_expired)
tokens_flag_expired = maintenance_task("tokens_flag_expired", tokens.tokens_flag_expired)
tokens_announce_expiring = maintenance_task("tokens_announce_expiring", tokens.tokens_announce_expiring)
session_clear_expired = maintenance_task("session_clear_expired", sessions.session_clear_expired)
