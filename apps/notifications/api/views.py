from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from ..preferences import preferences_of, preferences_save
from .serializers import PreferencesChangeSerializer, PreferencesSerializer


class PreferencesView(APIView):
    """Your email notification preferences: the events your role may be told of, each with email on or off."""

    def _body(self, user) -> dict:
        return PreferencesSerializer({"preferences": preferences_of(user=user)}).data

    @extend_schema(responses=PreferencesSerializer)
    def get(self, request):
        return Response(self._body(request.user))

    @extend_schema(request=PreferencesChangeSerializer, responses=PreferencesSerializer)
    def put(self, request):
        serializer = PreferencesChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        choices = {item["event"]: item["email"] for item in serializer.validated_data["preferences"]}
        preferences_save(user=request.user, choices=choices)
        return Response(self._body(request.user))
