"""The beat schedule defined in code; `manage.py setup_periodic_tasks` applies it.

Times are cron expressions in UTC. Administrators may pause an entry in the
admin; applying the schedule again keeps it paused.
"""

from apps.core.services import ScheduledTask

SCHEDULE = [
    ScheduledTask(
        name="Clear expired sessions",
        task="maintenance.session_clear_expired",
        crontab="17 3 * * *",
        queue="maintenance",
        description="Deletes expired login sessions, and list entries of sessions that no longer exist, every night.",
    ),
    ScheduledTask(
        name="Prune old maintenance runs",
        task="maintenance.maintenance_runs_prune",
        crontab="22 3 * * *",
        queue="maintenance",
        description="Deletes the records of scheduled task runs older than MAINTENANCE_RUN_RETENTION_DAYS every night.",
    ),
    ScheduledTask(
        name="Sign audit checkpoint",
        task="maintenance.audit_checkpoint",
        crontab="5 * * * *",
        queue="maintenance",
        description="Signs the audit chain's head every hour, so that removing the newest events is detected.",
    ),
    ScheduledTask(
        name="Verify audit trail",
        task="maintenance.audit_verify",
        crontab="35 2 * * *",
        queue="maintenance",
        description="Recomputes the whole audit chain and its checkpoints every night; a failure shows in the admin.",
    ),
    ScheduledTask(
        name="Create audit partitions",
        task="maintenance.audit_partitions",
        crontab="40 2 * * *",
        queue="maintenance",
        description="Creates the audit table's partitions of this month and the next two where missing (PostgreSQL), "
        "so events never fall into the default partition.",
    ),
    ScheduledTask(
        name="Forward audit events",
        task="maintenance.audit_forward",
        crontab="* * * * *",
        queue="maintenance",
        description="Sends new audit events to each active audit sink (SIEM) every minute, until it is caught up.",
    ),
    ScheduledTask(
        name="Summarise refused requests",
        task="maintenance.audit_refusals_flush",
        crontab="*/5 * * * *",
        queue="maintenance",
        description="Writes one audit event per client and closed window of refused requests, with their count.",
    ),
    ScheduledTask(
        name="Clear expired lockouts",
        task="maintenance.lockout_clear_expired",
        crontab="47 * * * *",
        queue="maintenance",
        description="Deletes failed-login counters older than the lockout cool-off every hour.",
    ),
    ScheduledTask(
        name="Flag expired API tokens",
        task="maintenance.tokens_flag_expired",
        crontab="25 * * * *",
        queue="maintenance",
        description="Records in the audit trail each API token that has expired since the last run.",
    ),
    ScheduledTask(
        name="Announce expiring API tokens",
        task="maintenance.tokens_announce_expiring",
        crontab="28 * * * *",
        queue="maintenance",
        description="Tells each API token's holder, once, when the token expires within 7 days (token.expiring).",
    ),
    ScheduledTask(
        name="Nightly database backup",
        task="maintenance.backup_create_nightly",
        crontab="30 1 * * *",
        queue="maintenance",
        description="Dumps the database into an encrypted, checksummed file in the backup storage every night.",
    ),
    ScheduledTask(
        name="Verify backups by restoring them",
        task="maintenance.backup_verify_weekly",
        crontab="0 4 * * 0",
        queue="maintenance",
        description="Restores the newest backup and one random older one into a scratch database every Sunday.",
    ),
    ScheduledTask(
        name="Check for a recent verified backup",
        task="maintenance.backups_staleness_check",
        crontab="50 * * * *",
        queue="maintenance",
        description="Announces backup.stale, once a day while it lasts, when no backup taken within "
        "BACKUP_VERIFIED_MAX_AGE_DAYS has passed a verification.",
    ),
    ScheduledTask(
        name="Prune old backups",
        task="maintenance.backup_prune_daily",
        crontab="15 3 * * *",
        queue="maintenance",
        description="Deletes backups beyond the daily, weekly and monthly ones kept; never the newest verified one.",
    ),
    ScheduledTask(
        name="Check models for drift",
        task="maintenance.registry_drift_check",
        crontab="*/10 * * * *",
        queue="maintenance",
        description="Compares each model version's recent predictions with its evaluation (PSI of labels and input "
        "lengths): sets registry_drift_psi and announces model.drift, once a day per drifting version.",
    ),
    ScheduledTask(
        name="Monthly compliance reports",
        task="maintenance.reports_monthly",
        crontab="0 1 1 * *",
        queue="maintenance",
        description="On the 1st, queues the access review, MFA coverage and backup evidence (PDF) for the previous "
        "calendar month.",
    ),
    ScheduledTask(
        name="Prune old compliance reports",
        task="maintenance.reports_prune_daily",
        crontab="45 3 * * *",
        queue="maintenance",
        description="Deletes reports (files and manifests) older than REPORT_RETENTION_DAYS every night.",
    ),
    ScheduledTask(
        name="Send due webhook deliveries",
        task="maintenance.webhook_deliveries_send_due",
        crontab="* * * * *",
        queue="maintenance",
        description="Retries failed webhook deliveries whose next attempt is due (backing off for up to a day), "
        "and sends any whose first attempt's task was lost.",
    ),
]
