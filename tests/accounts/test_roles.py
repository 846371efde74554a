"""Roles: the groups and their permissions (the owner/reader rules are tested through each app's API)."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command

from apps.audit.models import AuditEvent

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
