"""Roles: the groups and their permissions, and the owner/reader rules every app's API uses."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.test import override_settings
from django.urls import include, path
from rest_framework import mixins, serializers, viewsets
from rest_framework.routers import SimpleRouter

from apps.accounts.models import ApiToken
from apps.accounts.tokens import token_create
from apps.audit.models import AuditEvent
from apps.core.permissions import OwnedObjectsQuerysetMixin, WritesByOwnerOrAdmin

pytestmark = pytest.mark.django_db


def test_setup_roles_is_idempotent_and_gives_each_role_its_permissions(capsys):
    call_command("setup_roles")
    call_command("setup_roles")
    assert "Roles: admin (" in capsys.readouterr().out
    assert Group.objects.get(name="admin").permissions.count() == Permission.objects.count()
    compliance = set(Group.objects.get(name="compliance").permissions.values_list("codename", flat=True))
    assert {"view_auditevent", "view_auditcheckpoint"} <= compliance
    assert not {codename for codename in compliance if codename.startswith(("add_", "change_", "delete_"))}


def test_setup_roles_puts_drifted_permissions_back_and_audits_it():
    call_command("setup_roles")
    viewer = Group.objects.get(name="viewer")
    viewer.permissions.add(Permission.objects.get(codename="delete_user"))
    call_command("setup_roles")
    assert not viewer.permissions.filter(codename="delete_user").exists()
    removed = AuditEvent.objects.filter(action="accounts.role.changed", object_id=str(viewer.pk)).order_by("id").last()
    assert "removed" in removed.changes["permissions"]


class _TokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name"]


class _OwnedTokens(
    OwnedObjectsQuerysetMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet
):
    """Stands in for any owned resource (jobs, model versions) using the shared rules."""

    queryset = ApiToken.objects.all()
    serializer_class = _TokenSerializer
    permission_classes = [WritesByOwnerOrAdmin]


_router = SimpleRouter()
_router.register("owned", _OwnedTokens, basename="owned")
urlpatterns = [path("api/v1/test/", include(_router.urls))]


def _owned_by(user) -> int:
    return token_create(owner=user, name="thing", scopes=["read"], expires_in_days=1).token.pk


@override_settings(ROOT_URLCONF=__name__)
@pytest.mark.parametrize(
    ("reader", "owner", "status"),
    [
        ("operator_user", "operator_user", 200),
        ("operator_user", "other_operator", 404),
        ("viewer_user", "operator_user", 200),
        ("admin_user", "operator_user", 200),
        ("compliance_user", "operator_user", 404),
        ("outsider_user", "operator_user", 404),
    ],
)
def test_owners_see_their_own_objects_readers_see_all_others_get_404(api_client, request, reader, owner, status):
    pk = _owned_by(request.getfixturevalue(owner))
    api_client.force_authenticate(request.getfixturevalue(reader))
    assert api_client.get(f"/api/v1/test/owned/{pk}/").status_code == status


@override_settings(ROOT_URLCONF=__name__)
@pytest.mark.parametrize(
    ("writer", "status"),
    [("operator_user", 200), ("viewer_user", 403), ("admin_user", 200), ("compliance_user", 403)],
)
def test_only_owners_and_admins_write_viewers_and_compliance_only_read(api_client, request, writer, status):
    user = request.getfixturevalue(writer)
    pk = _owned_by(user if writer == "operator_user" else request.getfixturevalue("operator_user"))
    api_client.force_authenticate(user)
    assert api_client.patch(f"/api/v1/test/owned/{pk}/", {"name": "renamed"}, format="json").status_code == status


@pytest.fixture
def other_operator(db):
    from .factories import UserFactory

    return UserFactory(username="olga-operator", roles=["operator"])
