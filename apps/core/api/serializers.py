from rest_framework import serializers

from ..models import MaintenanceRun


class MaintenanceRunSerializer(serializers.ModelSerializer):
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = MaintenanceRun
        fields = [
            "id",
            "task_name",
            "status",
            "started_at",
            "finished_at",
            "duration_seconds",
            "message",
            "worker",
            "celery_task_id",
        ]
        read_only_fields = fields
