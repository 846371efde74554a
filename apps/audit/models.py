import json

from django.conf import settings
from django.db import models

from apps.core.formatting import date_time_text

from .choices import Outcome


class AuditEvent(models.Model):
    """One security-relevant event; rows are append-only and hash-chained.

    ``hash`` is SHA-256 over the row's content and ``prev_hash``, the hash of
    the event before it in the same ``chain`` (see ``hashing.py``; the trail is
    several chains appended in parallel, README "Audit trail: order");
    ``actor`` is not part of it, so deleting
    a user (which nulls the foreign key) keeps the chain valid, while the copied
    ``actor_username`` is.
    """

    id = models.BigAutoField(primary_key=True)
    timestamp = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=True
    )
    actor_username = models.CharField(max_length=150, blank=True)
    # Text, not inet: the hash covers the address exactly as Python wrote it.
    ip = models.CharField(max_length=45, blank=True, verbose_name="client IP")
    user_agent = models.CharField(max_length=256, blank=True)
    action = models.CharField(max_length=100, help_text="Dotted name, e.g. auth.login.failed.")
    object_type = models.CharField(max_length=100, blank=True, help_text="app_label.model of the object concerned.")
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    # Stored once, as the canonical JSON text the hash covers; ``changes`` reads it back.
    changes_text = models.TextField(
        default="{}", editable=False, help_text="Before/after of changed fields as JSON; secrets masked."
    )
    request_id = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    chain = models.PositiveSmallIntegerField(
        db_default=0, editable=False, help_text="Which of the parallel chains this event links into."
    )

    class Meta:
        ordering = ["-id"]
        # Every index is paid for on each append, so only what lists, filters and verify use.
        # The username index serves equality and the admin's prefix search alike.
        indexes = [
            # (timestamp, id): a period's page, newest first, is one range of it.
            models.Index(fields=["timestamp", "id"], name="audit_timestamp_id_idx"),
            # A chain's head (every append) and its events in order (verify).
            models.Index(fields=["chain", "id"], name="audit_chain_id_idx"),
            models.Index(fields=["action"], name="audit_action_idx"),
            models.Index(fields=["actor_username"], name="audit_username_idx", opclasses=["varchar_pattern_ops"]),
            models.Index(fields=["request_id"], name="audit_request_idx"),
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
            # An object id alone (the type unknown): its events newest first.
            models.Index(fields=["object_id", "-id"], name="audit_object_id_recent"),
            # Failures and denials, newest first: a few in a hundred rows, so successes (the rest) skip it.
            models.Index(
                fields=["outcome", "-id"], name="audit_outcome_unusual", condition=~models.Q(outcome=Outcome.SUCCESS)
            ),
        ]
        # On PostgreSQL the table is partitioned by month (migration 0013): every key includes the timestamp there,
        # and the primary key is (id, timestamp); ids still come from one sequence.
        constraints = [models.UniqueConstraint(fields=["hash", "timestamp"], name="audit_hash_unique")]
        # Read-only for everyone in the admin; the service is the only writer.
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"#{self.id} {self.action} by {self.actor_username or 'system'}"

    @property
    def changes(self) -> dict:
        """Before/after of changed fields (secrets masked), as recorded."""
        return json.loads(self.changes_text)


class AuditCheckpoint(models.Model):
    """A signed statement of the chain's head at one moment.

    Each checkpoint's HMAC also covers the previous checkpoint's signature, so
    removing checkpoints breaks the checkpoint chain, and removing the newest
    events contradicts the newest checkpoint.
    """

    created = models.DateTimeField(auto_now_add=True)
    head_id = models.BigIntegerField()
    head_hash = models.CharField(max_length=64)
    event_count = models.BigIntegerField(help_text="Events from the very first one up to the head, archived included.")
    previous_signature = models.CharField(max_length=64, blank=True)
    heads = models.JSONField(
        default=dict, blank=True, help_text="Per chain, the id and hash of its newest event when signed."
    )
    signature = models.CharField(max_length=64)

    class Meta:
        ordering = ["-id"]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"checkpoint at event #{self.head_id} ({date_time_text(self.created)})"


class AuditArchive(models.Model):
    """Events moved out of the database into an archive file; the chain continues from ``anchor_hash``."""

    created = models.DateTimeField(auto_now_add=True)
    before = models.DateTimeField(help_text="Events older than this were archived.")
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    event_count = models.BigIntegerField()
    archived_total = models.BigIntegerField(help_text="Events archived so far, this archive included.")
    previous_anchor_hash = models.CharField(max_length=64)
    anchor_hash = models.CharField(max_length=64, help_text="Hash of the last archived event.")
    anchors = models.JSONField(
        default=dict, help_text="Per chain, the hash of its last archived event: where it continues."
    )
    file_name = models.CharField(max_length=500)
    file_sha256 = models.CharField("file SHA-256", max_length=64)

    class Meta:
        ordering = ["-id"]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"archive of events #{self.first_id}-#{self.last_id}"


class AuditSink(models.Model):
    """A collector (SIEM) that receives every audit event, in chain order, from ``cursor`` on.

    ``cursor`` is the id of the last event the collector accepted; the forwarder moves it only after a batch
    was accepted, so an outage delays events but loses none.
    """

    name = models.CharField(max_length=100, unique=True)
    # May carry credentials (HTTPS basic auth, a bearer token): shown masked, never logged or audited as is.
    url = models.CharField(
        "URL",
        max_length=1000,
        help_text="syslog+tcp://host:514, syslog+tls://host:6514 or https://[user:password@]host/path.",
    )
    tls_ca_file = models.CharField(
        "TLS CA file",
        max_length=500,
        blank=True,
        help_text="PEM file of the CA that signed the collector's certificate; empty: the system's CAs.",
    )
    active = models.BooleanField(default=True)
    managed = models.BooleanField(
        default=False, editable=False, help_text="Yes: configured by AUDIT_FORWARD_URLS, and changed there only."
    )
    cursor = models.BigIntegerField(
        default=0, help_text="Id of the last event the collector accepted; forwarding continues after it."
    )
    last_success_at = models.DateTimeField("last success", null=True, blank=True, editable=False)
    last_failure_at = models.DateTimeField("last failure", null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    forwarded_total = models.BigIntegerField(default=0, editable=False, help_text="Events this sink accepted.")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "audit sink"
        constraints = [models.CheckConstraint(condition=models.Q(cursor__gte=0), name="audit_sink_cursor_not_negative")]

    def __str__(self) -> str:
        return self.name
