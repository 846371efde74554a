"""The admin site: django-otp's OTPAdminSite in django-unfold's look, signing in through the portal's sign-in."""

from urllib.parse import urlencode

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django_otp.admin import OTPAdminSite
from unfold.sites import UnfoldAdminSite

from . import selectors
from .oidc.views import LogoutView  # also ends the provider's session after a single sign-on


class OpsdeckAdminSite(OTPAdminSite, UnfoldAdminSite):
    """Staff users need an OTP-verified session (``OTPAdminSite.has_permission``).

    There is one sign-in page, the portal's: the admin's login sends people there, so that lockout, OTP
    throttling, forced enrollment and the audit trail have one door; signing out is the portal's too.
    """

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
        if user.is_authenticated and not self.has_permission(request):
            # The sign-in page would send a signed-in user straight back here.
            raise PermissionDenied("The administration is for staff members.")
        return redirect(f"{reverse('login')}?{urlencode({REDIRECT_FIELD_NAME: next_url})}")

    def logout(self, request, extra_context=None):
        return LogoutView.as_view()(request)
