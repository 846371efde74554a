"""The sign-in apps from packages, under names that say what they hold in the admin.

Their own app configs have no ``verbose_name``, so the admin would show their labels (otp_static, otp_totp,
axes). Subclassing keeps each app's name and label, and so its tables and migrations, as they are.
"""

from axes.apps import AppConfig as AxesAppConfig
from django_otp.plugins.otp_static.apps import DefaultConfig as StaticDeviceConfig
from django_otp.plugins.otp_totp.apps import DefaultConfig as TOTPDeviceConfig
from django_otp_webauthn.apps import OtpWebauthnConfig


class RecoveryCodesConfig(StaticDeviceConfig):
    verbose_name = "Recovery codes"


class AuthenticatorAppsConfig(TOTPDeviceConfig):
    verbose_name = "Authenticator apps"


class SignInLockoutConfig(AxesAppConfig):
    verbose_name = "Sign-in lockout"


class PasskeysConfig(OtpWebauthnConfig):
    verbose_name = "Passkeys"
