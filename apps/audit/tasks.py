"""Scheduled audit maintenance: signed checkpoints, the daily verification and summaries of refusals."""

from apps.core.maintenance import maintenance_task

from . import refusals, services

audit_checkpoint = maintenance_task("audit_checkpoint", services.checkpoint_record)
audit_verify = maintenance_task("audit_verify", services.chain_verify_and_report)
audit_refusals_flush = maintenance_task("audit_refusals_flush", refusals.refusals_flush)
