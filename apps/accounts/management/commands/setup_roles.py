from django.core.management.base import BaseCommand

from apps.accounts.roles import roles_setup


class Command(BaseCommand):
    help = "Create or update the admin, operator, viewer and compliance roles and their permissions (idempotent)."

    def handle(self, *args, **options) -> None:
        counts = roles_setup()
        self.stdout.write("Roles: " + ", ".join(f"{role} ({count} permissions)" for role, count in counts.items()))
