"""The roles (Django groups) and the permissions each holds; applied by `manage.py setup_roles`."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from apps.core.choices import Role

# Model permissions per role ("app_label.codename"); later apps add theirs.
# The admin role holds every permission; object ownership rules live in apps.core.permissions.
ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    Role.OPERATOR: (
        "accounts.view_apitoken",
        "accounts.add_apitoken",
        "quantum.view_quantumjob",
        "quantum.add_quantumjob",
        "registry.view_registeredmodel",
        "registry.add_registeredmodel",
        "registry.view_modelversion",
        "registry.add_modelversion",
        "registry.view_modelalias",
        "registry.view_inferencejob",
        "registry.add_inferencejob",
    ),
    Role.VIEWER: (
        "core.view_maintenancerun",
        "quantum.view_quantumjob",
        "registry.view_registeredmodel",
        "registry.view_modelversion",
        "registry.view_modelalias",
        "registry.view_inferencejob",
    ),
    Role.COMPLIANCE: (
        "audit.view_auditevent",
        "audit.view_auditcheckpoint",
        "audit.view_auditarchive",
        "backups.view_backup",
        "compliance.view_report",
        "core.view_maintenancerun",
    ),
}


def _permissions(names: tuple[str, ...]) -> list[Permission]:
    wanted = {tuple(name.split(".", 1)) for name in names}
    found = [
        permission
        for permission in Permission.objects.select_related("content_type").filter(
            codename__in=[codename for _, codename in wanted]
        )
        if (permission.content_type.app_label, permission.codename) in wanted
    ]
    missing = wanted - {(p.content_type.app_label, p.codename) for p in found}
    if missing:
        raise LookupError(f"Unknown permissions for a role: {sorted('.'.join(m) for m in missing)}")
    return found


@transaction.atomic
def roles_setup() -> dict[str, int]:
    """Create the four role groups and set their permissions exactly; idempotent.

    Returns the number of permissions per role. Changes show in the audit trail
    as accounts.role.* events.
    """
    counts = {}
    for role in Role:
        group, _ = Group.objects.get_or_create(name=role.value)
        permissions = (
            list(Permission.objects.all()) if role == Role.ADMIN else _permissions(ROLE_PERMISSIONS.get(role, ()))
        )
        current = set(group.permissions.values_list("pk", flat=True))
        wanted = {permission.pk for permission in permissions}
        if current - wanted:
            group.permissions.remove(*(current - wanted))
        if wanted - current:
            group.permissions.add(*(wanted - current))
        counts[role.value] = len(wanted)
    return counts
