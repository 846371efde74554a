"""Scheduled audit maintenance: signed checkpoints, the daily verification, summaries of refusals, forwarding,
the coming months' partitions."""

from celery import shared_task

from apps.core.maintenance import maintenance_task

from . import forwarding, partitions, refusals, services

audit_checkpoint = maintenance_task("audit_checkpoint", services.checkpoint_record)
audit_verify = maintenance_task("audit_verify", services.chain_verify_and_report)
audit_refusals_flush = maintenance_task("audit_refusals_flush", refusals.refusals_flush)
audit_forward = maintenance_task("audit_forward", forwarding.audit_forward)
audit_partitions = maintenance_task("audit_partitions", partitions.partitions_ensure)


@shared_task(name="maintenance.audit_forward_sink")
def audit_forward_sink(sink_id: int) -> str:
    """Send one sink's pending events now (the admin's "Send now"); nothing when it is gone or inactive."""
    return forwarding.audit_forward(sink_id=sink_id)
