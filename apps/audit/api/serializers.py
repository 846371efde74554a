from rest_framework import serializers

from ..export import EXPORT_FIELDS
from ..models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        # What an export holds, plus the actor's user id (null once the user is deleted).
        fields = ["actor", *EXPORT_FIELDS]
        read_only_fields = fields
