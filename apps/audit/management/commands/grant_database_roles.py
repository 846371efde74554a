from django.core.management.base import BaseCommand, CommandError

from apps.audit.database_roles import RoleGrantError, database_roles_grant


class Command(BaseCommand):
    help = (
        "Grant the application and audit-archive roles their privileges (PostgreSQL). Run as the owner of the "
        "tables, after migrate; see README, 'Database roles and the append-only audit trail'."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--app-role", required=True, help="Role of the portal, workers and beat.")
        parser.add_argument("--archive-role", required=True, help="Role of AUDIT_ARCHIVE_DATABASE_URL.")
        parser.add_argument("--print-only", action="store_true", help="Print the SQL without running it.")

    def handle(self, *args, app_role: str, archive_role: str, print_only: bool, **options) -> None:
        try:
            statements = database_roles_grant(app_role=app_role, archive_role=archive_role, apply=not print_only)
        except RoleGrantError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write("".join(f"{statement};\n" for statement in statements))
        if not print_only:
            self.stdout.write(self.style.SUCCESS(f"Granted {app_role} and {archive_role} their privileges."))
