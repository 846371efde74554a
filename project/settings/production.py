"""Production: the base settings with security tightened and no defaults for secrets.

Required: SECRET_KEY, AUDIT_SIGNING_KEY, BACKUP_ENCRYPTION_KEY, REPORT_SIGNING_KEY, ALLOWED_HOSTS and
DATABASE_URL (each
also as <NAME>_FILE where it is a secret). The portal is expected behind a TLS-terminating proxy
that sets X-Forwarded-Proto.
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import BACKUP_STORAGE, DEBUG, EMAIL_BACKEND, MEDIA_STORAGE, database_settings, env, with_audit_archive

SECRET_KEY = env.secret("SECRET_KEY", min_length=50)
if SECRET_KEY.startswith("django-insecure") or len(set(SECRET_KEY)) < 5:
    raise ImproperlyConfigured(
        "SECRET_KEY must be a long random value (e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )
AUDIT_SIGNING_KEY = env.secret("AUDIT_SIGNING_KEY", min_length=32)
# Its form (32 bytes, hex or base64) is checked where backups use it, with a message naming it.
BACKUP_ENCRYPTION_KEY = env.secret("BACKUP_ENCRYPTION_KEY", min_length=43)
# An Ed25519 private key in PEM; its form is checked where reports are signed.
REPORT_SIGNING_KEY = env.secret("REPORT_SIGNING_KEY", min_length=40)
if DEBUG:
    raise ImproperlyConfigured("DEBUG must be false with project.settings.production.")
if env.bool("CSP_REPORT_ONLY", False):
    # A report-only policy blocks nothing: for trying a change of policy out locally, never for serving.
    raise ImproperlyConfigured("CSP_REPORT_ONLY must be off with project.settings.production: it would block nothing.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set to the host names the portal answers to.")
# Links in emails and webhook payloads lead here.
PORTAL_URL = env.str("PORTAL_URL", f"https://{ALLOWED_HOSTS[0]}").rstrip("/")
if EMAIL_BACKEND.endswith("filebased.EmailBackend"):
    # No EMAIL_URL or EMAIL_HOST: send through the host's own mail server, as Django does by default.
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
DATABASES = with_audit_archive({"default": database_settings(env.database("DATABASE_URL"))})

SECURE_SSL_REDIRECT = True
# Probes and Prometheus scrape over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
STORAGES = {
    "default": MEDIA_STORAGE,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    "backups": BACKUP_STORAGE,
}
