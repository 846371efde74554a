"""The workers and queues view in the API (documentation of its bodies; the data comes from apps/jobs/selectors)."""

from rest_framework import serializers

from ..selectors import RATE_MINUTES_DEFAULT, RATE_MINUTES_MAX


class RunningJobSerializer(serializers.Serializer):
    kind = serializers.CharField(help_text="The job kind: quantum, inference, report, backup…")
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField(help_text="running, or cancelling while its worker stops it.")
    started_at = serializers.DateTimeField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)


class WorkerSerializer(serializers.Serializer):
    hostname = serializers.CharField(source="presence.hostname")
    state = serializers.CharField(help_text="active, draining (finishes what it runs, takes no more) or silent.")
    queues = serializers.ListField(child=serializers.CharField(), source="presence.queues")
    drained_queues = serializers.ListField(child=serializers.CharField(), source="presence.drained_queues")
    draining_since = serializers.DateTimeField(source="presence.draining_since", allow_null=True)
    concurrency = serializers.IntegerField(source="presence.concurrency", allow_null=True)
    pid = serializers.IntegerField(source="presence.pid", allow_null=True)
    processor = serializers.CharField(source="presence.processor")
    memory_bytes = serializers.IntegerField(source="presence.memory_bytes")
    started_at = serializers.DateTimeField(source="presence.started_at")
    last_heartbeat = serializers.DateTimeField(source="presence.seen_at", help_text="When it last announced itself.")
    versions = serializers.DictField(child=serializers.CharField(), source="presence.versions")
    running_jobs = RunningJobSerializer(many=True, source="running")


class QueueSerializer(serializers.Serializer):
    name = serializers.CharField()
    depth = serializers.IntegerField(allow_null=True, help_text="Messages waiting on the broker; null if unknown.")
    depth_error = serializers.CharField(help_text="Why the depth is unknown (empty when known).")
    finished = serializers.IntegerField(help_text="Jobs of this queue that finished within the window.")
    per_minute = serializers.FloatField(help_text="finished / minutes.")
    consumers = serializers.ListField(child=serializers.CharField(), help_text="Live workers taking from it.")
    held = serializers.IntegerField(
        help_text="Queued jobs of this queue held while maintenance mode is on: not on the broker any more, they "
        "start when maintenance ends."
    )


class HeldJobsSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Queued jobs held while maintenance mode is on.")
    per_queue = serializers.DictField(child=serializers.IntegerField())
    per_kind = serializers.DictField(child=serializers.IntegerField())


class RateWindowSerializer(serializers.Serializer):
    """The query of the read endpoints: the window of the jobs-per-minute figures."""

    minutes = serializers.IntegerField(
        required=False, default=RATE_MINUTES_DEFAULT, min_value=1, max_value=RATE_MINUTES_MAX
    )


class QueuesSerializer(serializers.Serializer):
    minutes = serializers.IntegerField(help_text="The window of the jobs-per-minute figures.")
    queues = QueueSerializer(many=True)
    held_during_maintenance = HeldJobsSerializer(
        help_text="Jobs held while maintenance mode is on; they start when it ends (all zero otherwise)."
    )


class WorkersSerializer(QueuesSerializer):
    workers = WorkerSerializer(many=True)


class DrainSerializer(serializers.Serializer):
    hostname = serializers.CharField(max_length=200, help_text="The worker's Celery hostname, e.g. celery@host1.")


class DrainResultSerializer(serializers.Serializer):
    hostname = serializers.CharField()
    state = serializers.CharField()
    drained_queues = serializers.ListField(child=serializers.CharField())
    draining_since = serializers.DateTimeField()


class CancelResultSerializer(serializers.Serializer):
    kind = serializers.CharField()
    id = serializers.IntegerField()
    status = serializers.CharField(help_text="cancelled (it was queued) or cancelling (its worker stops it).")
