"""The account page at /account/ and its MFA, re-authentication, password and session pages."""

from django.urls import path

from . import passkey_views, token_pages, views

urlpatterns = [
    path("", views.account, name="account"),
    path("reauthenticate/", views.reauthenticate, name="sudo"),
    path("reauthenticate/passkey/begin/", passkey_views.sudo_begin, name="passkey-sudo-begin"),
    path("reauthenticate/passkey/complete/", passkey_views.sudo_complete, name="passkey-sudo-complete"),
    path("passkeys/register/begin/", passkey_views.register_begin, name="passkey-register-begin"),
    path("passkeys/register/complete/", passkey_views.register_complete, name="passkey-register-complete"),
    path("passkeys/<int:pk>/remove/", passkey_views.passkey_remove_page, name="passkey-remove"),
    path("password/", views.password_change, name="password-change"),
    path("sessions/<int:pk>/end/", views.session_end, name="session-end"),
    path("sessions/end-others/", views.sessions_end_others, name="sessions-end-others"),
    path("tokens/new/", token_pages.token_new, name="token-new"),
    path("tokens/created/", token_pages.token_created, name="token-created"),
    path("tokens/<int:token_id>/revoke/", token_pages.token_revoke_page, name="token-revoke"),
    path("mfa/enroll/", views.mfa_enroll, name="mfa-enroll"),
    path("mfa/disable/", views.mfa_disable, name="mfa-disable"),
    path("mfa/recovery-codes/", views.mfa_recovery_codes, name="mfa-recovery-codes"),
    path("mfa/recovery-codes/download/", views.mfa_recovery_codes_download, name="mfa-recovery-codes-download"),
    path("mfa/recovery-codes/new/", views.mfa_recovery_codes_regenerate, name="mfa-recovery-codes-regenerate"),
]
