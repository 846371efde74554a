"""Single sign-on with OpenID Connect (mozilla-django-oidc), groups to roles and the provider's MFA."""
