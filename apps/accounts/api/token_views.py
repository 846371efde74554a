"""Token management: signed-in browser sessions only; a token can never manage tokens."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response

from ..models import ApiToken
from ..tokens import token_create, token_revoke
from .serializers import ApiTokenCreateSerializer, ApiTokenSerializer, IssuedApiTokenSerializer
from .sudo import require_fresh_second_factor


class SignedInSessionOnly(BasePermission):
    message = "API tokens cannot create, list or revoke tokens; sign in with a browser session."

    def has_permission(self, request, view) -> bool:
        return not isinstance(request.auth, ApiToken)


def _require_fresh_second_factor(request) -> None:
    """Creating a credential needs a code-verified session re-authenticated within the sudo window."""
    if not request.user.is_verified():
        # Checked first for its own message: a session without a second factor must set one up, not re-authenticate.
        raise PermissionDenied(
            "Creating a token needs two-factor authentication: set up an authenticator on your account page "
            "and sign in with a code.",
            code="otp_required",
        )
    require_fresh_second_factor(request, doing="creating a token", next_url="/account/")


class ApiTokenViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """The signed-in user's API tokens: list, create (the secret is shown once), revoke (DELETE)."""

    permission_classes = [IsAuthenticated, SignedInSessionOnly]
    serializer_class = ApiTokenSerializer
    filterset_fields = ["revoked"]

    queryset = ApiToken.objects.none()  # the schema's view of the model; requests use get_queryset

    def get_queryset(self):
        return ApiToken.objects.filter(owner=self.request.user)

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: IssuedApiTokenSerializer})
    def create(self, request, *args, **kwargs):
        _require_fresh_second_factor(request)
        form = ApiTokenCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        issued = token_create(owner=request.user, **form.validated_data)
        body = IssuedApiTokenSerializer(issued.token).data | {"token": issued.secret}
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ApiToken) -> None:
        token_revoke(token=instance, by=self.request.user)
