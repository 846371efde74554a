from rest_framework import serializers


class PreferenceSerializer(serializers.Serializer):
    event = serializers.CharField(source="name", help_text="The event's name, e.g. backup.failed.")
    label = serializers.CharField(source="event.label", read_only=True)
    description = serializers.CharField(source="event.description", read_only=True)
    email = serializers.BooleanField(help_text="Whether the event reaches you by email.")
    default = serializers.BooleanField(source="event.email_by_default", read_only=True)
    chosen = serializers.BooleanField(read_only=True, help_text="False while the default applies.")


class PreferencesSerializer(serializers.Serializer):
    preferences = PreferenceSerializer(many=True)


class PreferenceChangeSerializer(serializers.Serializer):
    event = serializers.CharField(max_length=40)
    email = serializers.BooleanField()


class PreferencesChangeSerializer(serializers.Serializer):
    preferences = PreferenceChangeSerializer(
        many=True, help_text="The events to change; events not named keep their setting."
    )

    def validate_preferences(self, value):
        names = [item["event"] for item in value]
        if len(set(names)) != len(names):
            raise serializers.ValidationError("Name each event once.")
        return value
