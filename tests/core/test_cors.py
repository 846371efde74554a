"""CORS: only the origins listed in CORS_ALLOWED_ORIGINS get the headers, only on the API, with the Authorization
header allowed; CORS_ALLOWED_ORIGINS is checked when the settings load."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.accounts.tokens import token_create
from project.settings.browser_access import cors_settings, web_origin
from project.settings.env import Environment

LISTED = "https://notebooks.example.com"
UNLISTED = "https://elsewhere.example.net"


@pytest.fixture
def listed_origin(settings):
    settings.CORS_ALLOWED_ORIGINS = [LISTED, "http://localhost:8888"]


@pytest.fixture
def token(db, operator_user):
    return token_create(owner=operator_user, name="notebook", scopes=["read"], expires_in_days=1).secret


def preflight(client, origin: str, path: str = "/api/v1/quantum/jobs/"):
    return client.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization",
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("listed_origin")
def test_a_listed_origins_preflight_may_send_the_authorization_header(client):
    response = preflight(client, LISTED)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == LISTED
    assert "authorization" in response["Access-Control-Allow-Headers"].split(", ")
    assert "GET" in response["Access-Control-Allow-Methods"]
    assert int(response["Access-Control-Max-Age"]) > 0
    # No cookies across origins unless CORS_ALLOW_CREDENTIALS says so: a token needs none.
    assert "Access-Control-Allow-Credentials" not in response


@pytest.mark.django_db
@pytest.mark.usefixtures("listed_origin")
def test_a_listed_origins_token_request_gets_its_answer_readable(client, token):
    response = client.get("/api/v1/quantum/jobs/", HTTP_ORIGIN=LISTED, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == LISTED
    assert "Retry-After" in response["Access-Control-Expose-Headers"]
    assert "origin" in response["Vary"].lower()


@pytest.mark.django_db
@pytest.mark.usefixtures("listed_origin")
def test_an_unlisted_origin_gets_no_cors_header(client, token):
    for response in (
        preflight(client, UNLISTED),
        client.get("/api/v1/quantum/jobs/", HTTP_ORIGIN=UNLISTED, HTTP_AUTHORIZATION=f"Bearer {token}"),
        # Same host, another port: another origin.
        preflight(client, "https://notebooks.example.com:8443"),
        preflight(client, "http://notebooks.example.com"),
    ):
        assert not [name for name in response.headers if name.lower().startswith("access-control-")]


@pytest.mark.django_db
@pytest.mark.usefixtures("listed_origin")
def test_pages_and_the_admin_answer_no_other_origin(client):
    for path in ("/accounts/login/", "/admin/login/", "/health/ready"):
        response = client.get(path, HTTP_ORIGIN=LISTED)
        assert "Access-Control-Allow-Origin" not in response, path


@pytest.mark.django_db
def test_no_origin_is_listed_by_default(client, settings):
    assert cors_settings(Environment({}))["CORS_ALLOWED_ORIGINS"] == []
    settings.CORS_ALLOWED_ORIGINS = []
    assert "Access-Control-Allow-Origin" not in preflight(client, LISTED)


@pytest.mark.django_db
def test_credentials_are_allowed_only_when_switched_on(client, settings):
    settings.CORS_ALLOWED_ORIGINS = [LISTED]
    settings.CORS_ALLOW_CREDENTIALS = True
    assert preflight(client, LISTED)["Access-Control-Allow-Credentials"] == "true"


def test_listed_origins_are_read_as_browsers_send_them():
    env = Environment(
        {"CORS_ALLOWED_ORIGINS": "https://Notebooks.Example.com:443, http://localhost:8888,http://[::1]:3000"}
    )
    assert cors_settings(env)["CORS_ALLOWED_ORIGINS"] == [
        "https://notebooks.example.com",
        "http://localhost:8888",
        "http://[::1]:3000",
    ]


@pytest.mark.parametrize(
    "value",
    [
        "*",
        "https://*.example.com",
        "notebooks.example.com",
        "ftp://files.example.com",
        "https://notebooks.example.com/",
        "https://notebooks.example.com/lab",
        "https://notebooks.example.com?x=1",
        "https://user:pw@notebooks.example.com",
        "https://notebooks.example.com:99999",
        "https://bad_host.example.com",
        "http://1.2.3.999",
        "null",
    ],
)
def test_anything_but_an_origin_is_refused_naming_the_variable(value):
    with pytest.raises(ImproperlyConfigured, match="CORS_ALLOWED_ORIGINS"):
        cors_settings(Environment({"CORS_ALLOWED_ORIGINS": value}))


def test_a_wildcard_is_refused_with_or_without_credentials():
    for credentials in ("true", "false"):
        with pytest.raises(ImproperlyConfigured, match="wildcard is refused"):
            cors_settings(Environment({"CORS_ALLOWED_ORIGINS": "*", "CORS_ALLOW_CREDENTIALS": credentials}))
    with pytest.raises(ImproperlyConfigured, match="CORS_ALLOW_CREDENTIALS"):
        cors_settings(Environment({"CORS_ALLOW_CREDENTIALS": "sometimes"}))


def test_web_origin_drops_a_default_port():
    assert web_origin("http://portal.example.com:80", name="X") == "http://portal.example.com"
    assert web_origin("https://portal.example.com:8443", name="X") == "https://portal.example.com:8443"
