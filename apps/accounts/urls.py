from django.contrib.auth import views as auth_views
from django.urls import path

from . import reset_pages, views

urlpatterns = [
    path("login/", views.PasswordLoginView.as_view(), name="login"),
    path("login/code/", views.login_otp, name="login-otp"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", reset_pages.password_reset_request, name="password-reset"),
    path("password-reset/sent/", reset_pages.password_reset_sent, name="password-reset-sent"),
    path(
        "password-reset/<uidb64>/<token>/",
        reset_pages.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path("password-reset/done/", reset_pages.password_reset_complete, name="password-reset-complete"),
]
