"""The admin site: django-otp's OTPAdminSite, signing in through the portal's two-step login."""

from urllib.parse import urlencode

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.shortcuts import redirect
from django.urls import reverse
from django_otp.admin import OTPAdminSite

from . import selectors


class OpsdeckAdminSite(OTPAdminSite):
    """Staff users need an OTP-verified session (``OTPAdminSite.has_permission``).

    The admin's login page keeps the admin's look but posts to the portal's
    login, so there is one login flow: one place for lockout, OTP throttling,
    forced enrollment and the audit trail.
    """

    login_template = None  # Django's admin login page, not django-otp's one-page form
    login_form = None

    def __init__(self, name: str = "admin"):
        # OTPAdminSite names itself "otpadmin"; the URL namespace must stay "admin".
        super().__init__(name)

    def login(self, request, extra_context=None):
        next_url = request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index", current_app=self.name)
        user = request.user
        if user.is_authenticated and user.is_active and user.is_staff and not user.is_verified():
            # Signed in with the password only: finish with the second factor, or enroll one.
            step = "login-otp" if selectors.user_has_confirmed_device(user=user) else "mfa-enroll"
            return redirect(f"{reverse(step)}?{urlencode({REDIRECT_FIELD_NAME: next_url})}")
        if request.method == "POST":
            return redirect(f"{reverse('login')}?{urlencode({REDIRECT_FIELD_NAME: next_url})}")
        return super().login(request, {**(extra_context or {}), "app_path": reverse("login")})
