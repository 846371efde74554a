"""Forms of the sign-in, enrollment, re-authentication and password pages."""

from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm

CODE_ATTRS = {"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false", "autocapitalize": "off"}


class OtpCodeForm(forms.Form):
    code = forms.CharField(
        label="Authentication code",
        max_length=32,
        help_text="The 6-digit code from your authenticator app, or one of your recovery codes.",
        widget=forms.TextInput(attrs=CODE_ATTRS),
    )


class EnrollmentForm(forms.Form):
    code = forms.CharField(
        label="Code from your authenticator app",
        max_length=16,
        widget=forms.TextInput(attrs={**CODE_ATTRS, "inputmode": "numeric"}),
    )


class ReauthenticationForm(forms.Form):
    password = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput(attrs={"autofocus": True}))
    code = forms.CharField(
        label="Authentication code", max_length=32, required=False, widget=forms.TextInput(attrs=CODE_ATTRS)
    )

    def __init__(self, *args, needs_code: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.needs_code = needs_code
        if needs_code:
            self.fields["code"].required = True
        else:
            del self.fields["code"]


class CurrentPasswordChangeForm(PasswordChangeForm):
    """Django's password change form; the current password is checked by ``authenticate``.

    So a wrong current password counts towards the lockout and is audited like a failed sign-in, and a
    stolen session cannot guess it without limit.
    """

    error_messages = {**PasswordChangeForm.error_messages, "password_incorrect": "That is not your current password."}

    def __init__(self, user, *args, request, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.request = request
        self.fields["old_password"].label = "Current password"

    def clean_old_password(self):
        old_password = self.cleaned_data["old_password"]
        checked = authenticate(self.request, username=self.user.get_username(), password=old_password)
        if checked is None or checked.pk != self.user.pk:
            raise forms.ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return old_password


class PasswordResetRequestForm(forms.Form):
    email = forms.EmailField(
        label="Email address",
        max_length=254,
        help_text="The address your Opsdeck account uses.",
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )


class ResetPasswordForm(SetPasswordForm):
    """Django's new-password form (with the password validators), labelled for the reset page."""

    def __init__(self, user, *args, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.fields["new_password1"].widget.attrs["autofocus"] = True
