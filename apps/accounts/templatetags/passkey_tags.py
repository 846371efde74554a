"""What the sign-in pages need to know about passkeys, without their views computing it."""

from django import template
from django.conf import settings

from .. import selectors

register = template.Library()


@register.simple_tag
def passkey_passwordless_enabled() -> bool:
    """Whether some role may sign in with a passkey alone (PASSKEY_PASSWORDLESS_ROLES)."""
    return bool(settings.PASSKEY_PASSWORDLESS_ROLES)


@register.simple_tag
def passkeys_of(user) -> list:
    """The user's passkeys, for the account page."""
    return selectors.passkeys_of(user=user) if user.is_authenticated else []
