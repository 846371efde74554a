"""Forms of the sign-in, enrollment and re-authentication pages."""

from django import forms

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
