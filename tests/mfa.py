"""Helpers for tests that need OTP devices, codes and OTP-verified sessions."""

from __future__ import annotations

import time
from binascii import unhexlify

from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice


def totp_device_create(user, *, key: str | None = None) -> TOTPDevice:
    """A confirmed TOTP device of ``user`` (``key`` in hex, as django-otp stores it)."""
    extra = {"key": key} if key else {}
    return TOTPDevice.objects.create(user=user, name="Test authenticator", confirmed=True, **extra)


def totp_code(key_hex: str, *, at: float | None = None, step: int = 30) -> str:
    """The 6-digit code an authenticator app shows for ``key_hex`` at ``at`` (default now)."""
    totp = TOTP(unhexlify(key_hex.encode()), step=step)
    totp.time = time.time() if at is None else at
    return f"{totp.token():06d}"


def totp_device_for(user) -> TOTPDevice:
    """The user's confirmed TOTP device, created if there is none."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).first() or totp_device_create(user)


def otp_force_login(client, user) -> TOTPDevice:
    """Sign ``client`` in as ``user`` with an OTP-verified session, as the two-step login leaves it.

    Gives the user a confirmed TOTP device if it has none; django-otp's
    middleware trusts the device id stored in the session.
    """
    device = totp_device_for(user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device


def sudo_force_login(client, user) -> TOTPDevice:
    """An OTP-verified session that also re-authenticated just now (sudo mode)."""
    from apps.accounts.sudo import SUDO_SESSION_KEY, SUDO_USER_SESSION_KEY

    device = otp_force_login(client, user)
    session = client.session
    session[SUDO_SESSION_KEY] = time.time()
    session[SUDO_USER_SESSION_KEY] = str(user.pk)
    session.save()
    return device


def browser_sign_in(page, *, username: str, password: str, key_hex: str, submit: str, landing: str) -> None:
    """In a real browser on a login page: the password (sent with the ``submit`` button), then the
    authenticator's code; waits until the browser lands on ``landing``."""
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click(submit)
    page.wait_for_url("**/accounts/login/code/**")
    page.fill("#id_code", totp_code(key_hex))
    page.click("main button[type=submit]")
    page.wait_for_url(landing)


def browser_admin_sign_in(page, base_url: str, *, username: str, password: str, key_hex: str) -> None:
    """In a real browser on the sign-in page the admin sent it to: the password, then the authenticator's code."""
    browser_sign_in(
        page,
        username=username,
        password=password,
        key_hex=key_hex,
        submit="main button[type=submit]",
        landing=base_url + "/admin/",
    )


def sudo_expire(client) -> None:
    """Move the session's last re-authentication back past SUDO_WINDOW_MINUTES."""
    from django.conf import settings

    from apps.accounts.sudo import SUDO_SESSION_KEY

    session = client.session
    session[SUDO_SESSION_KEY] = time.time() - settings.SUDO_WINDOW_MINUTES * 60 - 1
    session.save()


def without_fresh_code(api_client, user, session: str) -> dict:
    """Sign ``user`` in one of the ways that lack a fresh authenticator code: "code-only" (a code at sign-in but
    no re-authentication), "sudo-expired" (re-authenticated too long ago) or "api-token" (a token, which never
    re-authenticates). Returns the request headers to send."""
    from apps.accounts.tokens import token_create

    if session == "code-only":
        otp_force_login(api_client, user)
        return {}
    if session == "sudo-expired":
        sudo_force_login(api_client, user)
        sudo_expire(api_client)
        return {}
    totp_device_create(user)  # a token of a user without MFA would be refused before the sudo rule
    issued = token_create(owner=user, name="ci", scopes=["read", "write"], expires_in_days=1)
    return {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}


def staff_force_login(client, user):
    """Make ``user`` staff and sign them in with a code, as someone who uses the admin."""
    user.is_staff = True
    user.save()
    otp_force_login(client, user)
    return client
