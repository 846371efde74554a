"""The admin's index names the sign-in apps in words, not by their package labels."""

import pytest

pytestmark = pytest.mark.django_db


def test_admin_index_names_the_sign_in_apps_in_words(admin_client):
    page = admin_client.get("/admin/").content.decode()

    for name in ("Recovery codes", "Authenticator apps", "Sign-in lockout"):
        assert name in page
    for label in ("Otp_Static", "Otp_Totp", "OTP_STATIC", "Axes<"):
        assert label not in page
