"""Against a running `runportal`, over real HTTP and websockets: an administrator who has not set up MFA
gets nothing more from a websocket or an API token than from the web pages."""

import asyncio
import http.cookiejar
import re
import urllib.parse
import urllib.request

import pytest
import websockets

from tests.helpers import PortalProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
ADMIN = {"OPSDECK_ADMIN_USERNAME": "unenrolled-admin", "OPSDECK_ADMIN_PASSWORD": "an-unenrolled-passphrase"}
ADMIN_TOKEN = """
from apps.accounts.models import User
from apps.accounts.tokens import token_create
user = User.objects.get(username="unenrolled-admin")
print(token_create(owner=user, name="script", scopes=["read"], expires_in_days=1).secret)
"""


def _password_sign_in(portal) -> tuple[urllib.request.OpenerDirector, str, str]:
    """Sign in with the password only, as a browser would; returns the opener, the page it lands on, the cookie."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login_page = opener.open(portal.url + "/accounts/login/", timeout=15).read().decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page).group(1)
    form = {
        "csrfmiddlewaretoken": csrf,
        "username": ADMIN["OPSDECK_ADMIN_USERNAME"],
        "password": ADMIN["OPSDECK_ADMIN_PASSWORD"],
    }
    request = urllib.request.Request(
        portal.url + "/accounts/login/", data=urllib.parse.urlencode(form).encode(), headers={"Referer": portal.url}
    )
    with opener.open(request, timeout=15) as landed:
        landed_on = landed.url
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    return opener, landed_on, cookie


async def _handshake_status(url: str, origin: str, **options) -> int:
    """101 when the socket opened, else the HTTP status the handshake was refused with."""
    try:
        async with websockets.connect(url, origin=origin, open_timeout=15, **options):
            return 101
    except websockets.InvalidStatus as refused:
        return refused.response.status_code


def test_unenrolled_admin_gets_no_stream_and_no_token_access_from_a_running_portal(tmp_path):
    portal = PortalProcess(tmp_path, **ADMIN)
    portal.manage("migrate", "--noinput")
    portal.manage("setup_roles")
    portal.manage("ensure_admin")
    token = portal.manage("shell", "-c", ADMIN_TOKEN).strip().splitlines()[-1]
    portal.start()
    try:
        opener, landed_on, cookie = _password_sign_in(portal)
        assert "/account/mfa/enroll/" in landed_on, "the web pages send the administrator to enrollment"
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(portal.url + "/api/v1/quantum/jobs/", timeout=15)
        assert refused.value.code == 403

        ws = f"ws://127.0.0.1:{portal.port}"
        for path in ("/ws/jobs/", "/ws/jobs/1/", "/ws/events/"):
            status = asyncio.run(_handshake_status(ws + path, portal.url, additional_headers={"Cookie": cookie}))
            assert status == 403, f"{path} opened with a password-only session"
            status = asyncio.run(_handshake_status(ws + path, portal.url, subprotocols=["bearer", token]))
            assert status == 403, f"{path} opened with the unenrolled administrator's token"

        status, body = portal.get_json("/api/v1/quantum/jobs/", token=token)
        assert status == 403
        assert "two-factor" in body["detail"]
    finally:
        code, output = portal.stop()
    assert code == 0, output
    assert "Traceback" not in output
