"""Tables of single sign-on; imported by apps/accounts/models.py, so they belong to the accounts app."""

from django.conf import settings
from django.db import models
from django_otp.models import Device


class OidcIdentity(models.Model):
    """A user as an OpenID Connect provider knows them: its issuer and the ``sub`` claim, which never changes.

    Users are found by this pair only, never by their email address (anyone may set an address at some providers).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_identities")
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255, help_text="The provider's `sub` claim.")
    created = models.DateTimeField(auto_now_add=True)
    last_login = models.DateTimeField(null=True, blank=True)
    last_groups = models.JSONField(default=list, blank=True, help_text="The groups claim at the last sign-in.")
    last_amr = models.JSONField(default=list, blank=True, help_text="How the provider authenticated them last time.")

    class Meta:
        verbose_name = "single sign-on identity"
        verbose_name_plural = "single sign-on identities"
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"], name="oidc_identity_issuer_subject")]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"


class ProviderMfaDevice(Device):
    """The identity provider's own second factor, as a django-otp device.

    A session signed in through the provider with MFA (the ID token's ``amr``) is OTP-verified with this device, so
    every door that asks django-otp (the admin, API session auth, websockets, the MFA rule) accepts it as it is.
    It checks no codes: only the sign-in callback logs a session in with it.
    """

    identity = models.OneToOneField(OidcIdentity, on_delete=models.CASCADE, related_name="mfa_device")

    class Meta:
        verbose_name = "provider MFA"
        verbose_name_plural = "provider MFA"

    def verify_token(self, token) -> bool:
        return False

    def verify_is_allowed(self):
        return False, {"reason": "provider", "detail": "Confirmed at the identity provider, never with a code."}
