"""`ensure_admin` creates the first administrator once, from the environment or with a printed password."""

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from apps.accounts.models import User

pytestmark = pytest.mark.django_db


def test_creates_admin_with_random_password_printed_once(capsys, monkeypatch):
    monkeypatch.delenv("OPSDECK_ADMIN_USERNAME", raising=False)
    monkeypatch.delenv("OPSDECK_ADMIN_PASSWORD", raising=False)
    call_command("ensure_admin")
    output = capsys.readouterr().out
    password = output.split("password: ")[1].split()[0]
    assert authenticate(username="admin", password=password).is_superuser

    call_command("ensure_admin")
    again = capsys.readouterr().out
    assert "already exists" in again
    assert password not in again
    assert User.objects.count() == 1


def test_creates_admin_from_environment_without_printing_the_password(capsys, monkeypatch):
    monkeypatch.setenv("OPSDECK_ADMIN_USERNAME", "ops-root")
    monkeypatch.setenv("OPSDECK_ADMIN_PASSWORD", "a-long-and-unusual-passphrase")
    call_command("ensure_admin")
    assert "a-long-and-unusual-passphrase" not in capsys.readouterr().out
    user = authenticate(username="ops-root", password="a-long-and-unusual-passphrase")
    assert user.is_staff
    assert user.is_superuser


def test_weak_password_from_environment_is_refused_and_nothing_created(monkeypatch):
    monkeypatch.setenv("OPSDECK_ADMIN_USERNAME", "ops-root")
    monkeypatch.setenv("OPSDECK_ADMIN_PASSWORD", "short")
    with pytest.raises(CommandError, match="too short"):
        call_command("ensure_admin")
    assert not User.objects.exists()


def test_existing_ordinary_user_is_not_promoted(operator_user, monkeypatch):
    monkeypatch.setenv("OPSDECK_ADMIN_USERNAME", operator_user.username)
    monkeypatch.delenv("OPSDECK_ADMIN_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="not a superuser"):
        call_command("ensure_admin")
    operator_user.refresh_from_db()
    assert not operator_user.is_superuser
