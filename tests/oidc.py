"""A real OpenID Connect provider for the SSO tests: tests/oidc_provider/provider.js (npm's oidc-provider) under node,
on 127.0.0.1 with a free port, and the steps of signing in through it without a browser."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from .helpers import free_port

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc_provider"
CLIENT_ID = "opsdeck-tests"
CLIENT_SECRET = "opsdeck-tests-client-secret-0123456789"
PASSWORD = "provider-password-42"
ROLE_MAP = {"ops-admins": "admin", "ops-operators": "operator", "ops-auditors": "compliance"}
TEST_CLIENT_ORIGIN = "http://testserver"


@dataclass
class Provider:
    issuer: str
    process: subprocess.Popen

    def users_set(self, users: dict) -> None:
        self._post("/__test/users", users)

    def forge(self, on: bool) -> None:
        self._post("/__test/forge", {"on": on})

    def _post(self, path: str, body: dict) -> None:
        request = urllib.request.Request(
            self.issuer + path, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 204


def user(groups: list[str], amr: list[str] | None = None, **extra) -> dict:
    return {"password": PASSWORD, "groups": groups, "amr": amr or ["pwd"], **extra}


# Generous: node loads the package and makes two RSA keys, which a busy machine (a parallel test run) slows.
START_SECONDS = 15
START_ATTEMPTS = 3


def provider_start(*, portal_origins: list[str], users: dict) -> Provider:
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").exists():
        pytest.fail(
            "The test OpenID Connect provider is not installed: run `make test` (npm ci in tests/oidc_provider)."
        )
    failures = []
    # Node 20 (oidc-provider asks for 22) now and then hangs while starting the provider, before it listens: a
    # start that does not answer within START_SECONDS is killed and tried again.
    for _ in range(START_ATTEMPTS):
        port = free_port()
        environment = {
            **os.environ,
            "OIDC_TEST_PORT": str(port),
            "OIDC_TEST_REDIRECT_URIS": ",".join(f"{origin}/accounts/oidc/callback/" for origin in portal_origins),
            "OIDC_TEST_CLIENT_ID": CLIENT_ID,
            "OIDC_TEST_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_TEST_USERS": json.dumps(users),
            "NODE_NO_WARNINGS": "1",
        }
        process = subprocess.Popen(
            ["node", "provider.js"],
            cwd=PROVIDER_DIR,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        issuer = f"http://127.0.0.1:{port}"
        if _answers(issuer, process):
            return Provider(issuer=issuer, process=process)
        process.kill()
        failures.append(f"exit {process.wait()}: {process.stderr.read().decode()[-500:]}")
    pytest.fail(f"The test OpenID Connect provider did not start in {START_ATTEMPTS} attempts: {failures}")


def _answers(issuer: str, process: subprocess.Popen) -> bool:
    deadline = time.monotonic() + START_SECONDS
    while process.poll() is None and time.monotonic() < deadline:
        try:
            requests.get(f"{issuer}/.well-known/openid-configuration", timeout=1).raise_for_status()
            return True
        except requests.RequestException:
            time.sleep(0.05)
    return False


def provider_stop(provider: Provider) -> None:
    provider.process.terminate()
    try:
        provider.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        provider.process.kill()
        provider.process.wait()
    provider.process.stderr.close()


def portal_configure(settings, issuer: str, **overrides) -> None:
    """Point the portal's SSO settings at ``issuer`` (what OIDC_* variables would set)."""
    settings.OIDC_ISSUER = issuer
    settings.OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_RP_SCOPES = "openid email profile groups"
    settings.OIDC_BUTTON_LABEL = "Test SSO"
    settings.OIDC_ROLE_MAP = ROLE_MAP
    for name, value in overrides.items():
        setattr(settings, name, value)


def provider_login(
    browser_session: requests.Session, authorization_url: str, *, username: str, portal_origin: str = TEST_CLIENT_ORIGIN
) -> str:
    """At the provider: its login form, then consent, as a browser would; returns the URL it sends back to."""
    response = browser_session.get(authorization_url, allow_redirects=True, timeout=10)
    assert "/interaction/" in response.url, response.text[:500]
    uid = urlsplit(response.url).path.split("/")[2]
    issuer = f"{urlsplit(response.url).scheme}://{urlsplit(response.url).netloc}"
    response = browser_session.post(
        f"{issuer}/interaction/{uid}/login",
        data={"login": username, "password": PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    for _ in range(10):
        location = response.headers.get("location", "")
        if location.startswith(portal_origin):
            return location
        assert response.status_code in (302, 303), (response.status_code, response.text[:500])
        response = browser_session.get(
            requests.compat.urljoin(response.url, location), allow_redirects=False, timeout=10
        )
    raise AssertionError("The provider never sent the browser back to the portal.")


def sign_in(client, *, username: str, next_url: str = "/", reauth: bool = False, session=None) -> tuple[str, object]:
    """Start at /accounts/oidc/login/, sign in at the provider, come back; the callback URL and the portal's answer."""
    start = client.get("/accounts/oidc/login/", {"next": next_url, **({"reauth": 1} if reauth else {})})
    assert start.status_code == 302, start.content[:500]
    callback = provider_login(session or requests.Session(), start["Location"], username=username)
    return callback, client.get(callback.removeprefix(TEST_CLIENT_ORIGIN))
