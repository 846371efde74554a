from rest_framework import serializers

from ..models import User


class CurrentUserSerializer(serializers.ModelSerializer):
    roles = serializers.ListField(source="role_names", child=serializers.CharField(), read_only=True)

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "first_name",
            "last_name",
            "email",
            "is_staff",
            "is_superuser",
            "roles",
            "last_login",
        ]
        read_only_fields = fields
