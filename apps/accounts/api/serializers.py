from django.conf import settings
from rest_framework import serializers

from ..models import ApiToken, User
from ..tokens import SCOPES


class OptionalEmailField(serializers.EmailField):
    """An address or null: Django stores "" for an account without one, which is no email address."""

    def to_representation(self, value):
        return value or None


class CurrentUserSerializer(serializers.ModelSerializer):
    email = OptionalEmailField(allow_null=True, read_only=True)
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


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "scopes", "allowed_networks", "created", "expires", "last_used", "revoked"]
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=SCOPES), min_length=1, default=["read"])
    expires_in_days = serializers.IntegerField(
        allow_null=True,
        default=lambda: settings.API_TOKEN_DEFAULT_DAYS,
        help_text="Days until expiry; null (administrators only) for never.",
    )
    allowed_networks = serializers.ListField(child=serializers.CharField(max_length=50), default=list, max_length=20)


class IssuedApiTokenSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The secret; shown only in this response.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields
