"""The admin's app config, pointing ``django.contrib.admin.site`` at the OTP-requiring site.

Why this way: ``admin.site`` is a lazy object that instantiates the admin app
config's ``default_site`` on first use. Naming our site there (Django's
documented way to override the default site) keeps ``admin.site`` the one site
object every app registers on, with nothing to re-register and no class
swapping at run time. This module stays import-light because INSTALLED_APPS
loads it before the app registry is ready; the site class itself lives in
``admin_site.py``.
"""

from django.contrib.admin.apps import AdminConfig


class OpsdeckAdminConfig(AdminConfig):
    default_site = "apps.accounts.admin_site.OpsdeckAdminSite"
