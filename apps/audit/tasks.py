"""Scheduled audit maintenance: signed checkpoints and the daily verification."""

from apps.core.maintenance import maintenance_task

from . import services

audit_checkpoint = maintenance_task("audit_checkpoint", services.checkpoint_record)
audit_verify = maintenance_task("audit_verify", services.chain_verify_and_report)
