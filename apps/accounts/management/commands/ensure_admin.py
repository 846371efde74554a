from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.services import admin_ensure
from project.settings.env import Environment


class Command(BaseCommand):
    help = (
        "Create the first administrator if missing: OPSDECK_ADMIN_USERNAME (default 'admin') and "
        "OPSDECK_ADMIN_PASSWORD (or _FILE); without a password a random one is printed once."
    )

    def handle(self, *args, **options) -> None:
        environment = Environment()
        username = environment.str("OPSDECK_ADMIN_USERNAME", "admin") or "admin"
        password = environment.raw("OPSDECK_ADMIN_PASSWORD", None)
        try:
            result = admin_ensure(username=username, password=password)
        except (ValueError, ValidationError) as exc:
            messages = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
            raise CommandError(f"Cannot create admin {username!r}: {' '.join(messages)}") from None
        if not result.created:
            self.stdout.write(f"Admin account {username!r} already exists; left unchanged.")
        elif result.generated_password:
            self.stdout.write(
                self.style.WARNING(
                    f"Created admin account.\n  username: {username}\n  password: {result.generated_password}\n"
                    "This password is shown only once; change it after signing in."
                )
            )
        else:
            self.stdout.write(f"Created admin account {username!r} with the password from OPSDECK_ADMIN_PASSWORD.")
