"""From outside: a running `runportal`, configured only through OIDC_* environment variables, signs a person in
through the real provider over HTTP, lands them with the role of their group, and sends them to the provider's
end-session endpoint when they sign out."""

import pytest
import requests

from tests.helpers import PortalProcess
from tests.oidc import CLIENT_ID, CLIENT_SECRET, provider_login, provider_start, provider_stop, user

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
ROLES_OF_ADA = "from apps.accounts.models import User; print(sorted(User.objects.get(username='ada').role_names))"


def test_runportal_signs_in_through_the_provider_with_the_role_of_the_group(tmp_path):
    portal = PortalProcess(tmp_path)
    provider = provider_start(portal_origins=[portal.url], users={"ada": user(["ops-admins"], amr=["pwd", "mfa"])})
    portal.environment.update(
        OIDC_ISSUER=provider.issuer,
        OIDC_CLIENT_ID=CLIENT_ID,
        OIDC_CLIENT_SECRET=CLIENT_SECRET,
        OIDC_SCOPES="openid email profile groups",
        OIDC_ROLE_MAP="ops-admins=admin",
        OIDC_BUTTON_LABEL="Example SSO",
    )
    portal.manage("migrate", "--noinput")
    portal.manage("setup_roles")
    portal.start()
    try:
        browser, at_provider = requests.Session(), requests.Session()
        sign_in_page = browser.get(f"{portal.url}/accounts/login/", timeout=15)
        assert "Sign in with Example SSO" in sign_in_page.text
        start = browser.get(f"{portal.url}/accounts/oidc/login/", allow_redirects=False, timeout=15)
        assert start.status_code == 302
        assert start.headers["Location"].startswith(f"{provider.issuer}/")
        callback = provider_login(at_provider, start.headers["Location"], username="ada", portal_origin=portal.url)

        landed = browser.get(callback, timeout=15)

        assert landed.url == f"{portal.url}/dashboard/", "the provider's MFA counts: no TOTP step, no enrollment"
        assert portal.manage("shell", "-c", ROLES_OF_ADA).strip().splitlines()[-1] == "['admin']"
        assert browser.get(f"{portal.url}/admin/", timeout=15).status_code == 200
        signed_out = browser.post(
            f"{portal.url}/accounts/logout/",
            data={"csrfmiddlewaretoken": browser.cookies["csrftoken"]},
            headers={"Referer": portal.url},
            allow_redirects=False,
            timeout=15,
        )
        assert signed_out.headers["Location"].startswith(f"{provider.issuer}/session/end")
    finally:
        portal.kill()
        provider_stop(provider)
