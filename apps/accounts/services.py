"""Business logic of accounts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from .models import User

GENERATED_PASSWORD_BYTES = 18


@dataclass(frozen=True)
class AdminEnsured:
    user: User
    created: bool
    generated_password: str | None  # only when the portal chose it; shown once, never stored


@transaction.atomic
def admin_ensure(*, username: str, password: str | None) -> AdminEnsured:
    """Make sure superuser ``username`` exists; an existing account is left unchanged.

    Without a password a random one is generated and returned once so the
    caller can show it; a given password must pass the password validators.
    """
    existing = User.objects.filter(username=username).first()
    if existing is not None:
        if not existing.is_superuser:
            raise ValueError(f"User {username!r} exists but is not a superuser; choose another admin username.")
        return AdminEnsured(user=existing, created=False, generated_password=None)
    generated = None
    if not password:
        password = generated = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
    user = User(username=username, is_staff=True, is_superuser=True)
    validate_password(password, user)
    user.set_password(password)
    user.save()
    return AdminEnsured(user=user, created=True, generated_password=generated)
