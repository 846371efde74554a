from rest_framework import serializers

from apps.core.datetimes import StorableDateTimeField

from ..services import MESSAGE_MAX_LENGTH


class MaintenanceSwitchSerializer(serializers.Serializer):
    """Turn maintenance mode on (with a message and an optional end) or off."""

    enabled = serializers.BooleanField()
    message = serializers.CharField(required=False, allow_blank=True, max_length=MESSAGE_MAX_LENGTH, default="")
    until = StorableDateTimeField(required=False, allow_null=True, default=None)


class MaintenanceWindowSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    starts_at = StorableDateTimeField()
    ends_at = StorableDateTimeField()
    message = serializers.CharField(required=False, allow_blank=True, max_length=MESSAGE_MAX_LENGTH, default="")
    cancelled_at = serializers.DateTimeField(read_only=True)
