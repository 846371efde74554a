from django.urls import path
from django.views.decorators.cache import never_cache

from . import passkey_views, reset_pages, views
from .oidc import views as oidc_views

urlpatterns = [
    path("login/", views.PasswordLoginView.as_view(), name="login"),
    path("login/code/", views.login_otp, name="login-otp"),
    path("login/passkey/begin/", passkey_views.login_begin, name="passkey-login-begin"),
    path("login/passkey/complete/", passkey_views.login_complete, name="passkey-login-complete"),
    # Also ends the provider's session after a single sign-on.
    path("logout/", oidc_views.LogoutView.as_view(), name="logout"),
    path("oidc/login/", never_cache(oidc_views.OidcLoginView.as_view()), name="oidc-login"),
    path("oidc/callback/", never_cache(oidc_views.OidcCallbackView.as_view()), name="oidc-callback"),
    path("password-reset/", reset_pages.password_reset_request, name="password-reset"),
    path("password-reset/sent/", reset_pages.password_reset_sent, name="password-reset-sent"),
    path(
        "password-reset/<uidb64>/<token>/",
        reset_pages.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path("password-reset/done/", reset_pages.password_reset_complete, name="password-reset-complete"),
]
