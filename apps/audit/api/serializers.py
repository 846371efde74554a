from rest_framework import serializers

from ..models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "timestamp",
            "actor",
            "actor_username",
            "ip",
            "user_agent",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "changes",
            "request_id",
            "outcome",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields
