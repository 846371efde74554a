"""Password reset by email: the same answer for every address, the link (once, for a while), rate limits, the audit
trail, MFA after a reset, and the sessions and tokens of the account."""

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import ApiToken, UserSession
from apps.accounts.password_reset import password_reset_link, password_reset_send, password_reset_users
from apps.accounts.tokens import token_create
from apps.audit.models import AuditEvent
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.helpers import clean_environment, manage, without_nonces
from tests.jobs.test_queue_unavailable import broker_down_context
from tests.mail_server import html_body, text_body
from tests.mfa import totp_code, totp_device_create

REQUEST = "/accounts/password-reset/"
SENT = "/accounts/password-reset/sent/"
DONE = "/accounts/password-reset/done/"
LOGIN = "/accounts/login/"
OTP_STEP = "/accounts/login/code/"
NEW_PASSWORD = "Quartz-Meadow-Violin-41"
LINK = re.compile(r"https?://\S+/accounts/password-reset/[^/\s]+/[^/\s]+/")
START = datetime(2026, 5, 4, 10, 0, 0, tzinfo=UTC)


def _request(address: str, *, ip: str = "10.0.0.1"):
    return Client(REMOTE_ADDR=ip).post(REQUEST, {"email": address})


def _path(link: str) -> str:
    return urlsplit(link).path


def _open_link(client: Client, link: str):
    """Follow the link as a browser does: to the set-password page without the token."""
    response = client.get(_path(link))
    if response.status_code == 302:
        return client.get(response["Location"])
    return response


def _set_password(client: Client, link: str, password: str = NEW_PASSWORD):
    form_page = _open_link(client, link)
    assert "Set a new password" in form_page.content.decode(), form_page.content.decode()
    return client.post(form_page.wsgi_request.path, {"new_password1": password, "new_password2": password})


def _sign_in(user, password: str = DEFAULT_PASSWORD) -> Client:
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
    response = client.post(LOGIN, {"username": user.username, "password": password})
    assert response.status_code == 302, response.content
    return client


def _is_signed_in(client: Client) -> bool:
    return client.get("/account/").status_code == 200


# --- The request page


@pytest.mark.django_db
def test_sign_in_page_links_to_the_reset_request(client):
    page = client.get(LOGIN).content.decode()

    assert f'href="{REQUEST}"' in page
    assert "Forgot your password?" in page


@pytest.mark.django_db
def test_known_and_unknown_addresses_get_the_same_answer(viewer_user):
    known = _request(viewer_user.email)
    unknown = _request("nobody-here@example.test", ip="10.0.0.2")

    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"]) == (302, SENT)
    known_page, unknown_page = Client().get(SENT), Client().get(SENT)
    assert without_nonces(known_page.content) == without_nonces(unknown_page.content)
    assert "If an account uses that address, we sent it a link" in known_page.content.decode()
    assert "for 30 minutes" in known_page.content.decode()


@pytest.mark.django_db
def test_the_request_does_not_look_the_account_up(viewer_user):
    # The answer must not take longer for an address in use: the worker, not the request, looks for the account.
    def queries(address: str, ip: str) -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            _request(address, ip=ip)
        return [query["sql"] for query in captured.captured_queries]

    known = queries(viewer_user.email, "10.0.0.3")
    unknown = queries("nobody-here@example.test", "10.0.0.4")

    assert not [sql for sql in known + unknown if '"accounts_user"' in sql]
    assert len(known) == len(unknown)


@pytest.mark.django_db
def test_a_malformed_address_is_a_form_error_and_queues_nothing(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(REQUEST, {"email": "not an address"})

    assert response.status_code == 200
    assert "Enter a valid email address." in response.content.decode()
    assert callbacks == []
    assert not AuditEvent.objects.filter(action__startswith="auth.password_reset").exists()


@pytest.mark.django_db
def test_requests_are_audited_alike_for_known_and_unknown_addresses(viewer_user):
    _request(viewer_user.email.upper(), ip="10.0.0.5")
    _request("nobody-here@example.test", ip="10.0.0.6")

    rows = list(AuditEvent.objects.filter(action="auth.password_reset.requested").order_by("id"))
    assert [row.changes for row in rows] == [
        {"address": viewer_user.email},
        {"address": "nobody-here@example.test"},
    ]
    assert {(row.actor_id, row.object_type, row.object_id, row.object_repr) for row in rows} == {(None, "", "", "")}
    assert [row.ip for row in rows] == ["10.0.0.5", "10.0.0.6"]


@pytest.mark.django_db(transaction=True)
def test_a_request_the_task_queue_refuses_says_so_and_sends_nothing(viewer_user):
    with broker_down_context():
        response = _request(viewer_user.email)

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    page = response.content.decode()
    assert "The task queue is unavailable, so the password reset email could not be queued" in page
    assert "Ask again in 30 seconds or later." in page
    refused = AuditEvent.objects.get(action="auth.password_reset.refused")
    assert refused.changes["reason"] == "the task queue was unavailable"


# --- Who gets an email


@pytest.mark.django_db
def test_only_active_accounts_with_a_usable_password_get_a_link(viewer_user, operator_user):
    inactive = UserFactory(username="ingrid-inactive", email="shared@example.test", is_active=False)
    no_password = UserFactory(username="pat-no-password", email="shared@example.test")
    no_password.set_unusable_password()
    no_password.save()
    viewer_user.email = "Vera@Example.test"
    viewer_user.save()

    assert password_reset_users(address="vera@example.TEST ") == [viewer_user]
    assert password_reset_users(address="shared@example.test") == []
    assert password_reset_users(address="nobody-here@example.test") == []
    assert password_reset_users(address=operator_user.email) == [operator_user]
    assert not inactive.is_active


@pytest.mark.django_db
def test_no_email_goes_out_for_an_address_no_account_uses(smtp_server):
    assert password_reset_send(address="nobody-here@example.test", ip="10.0.0.7") == 0
    assert smtp_server.messages == []
    assert not AuditEvent.objects.filter(action="auth.password_reset.sent").exists()


@pytest.mark.django_db(transaction=True)
def test_the_email_arrives_with_a_link_that_sets_the_password_once(smtp_server, celery_worker, viewer_user):
    assert _request(viewer_user.email, ip="10.0.0.8").status_code == 302

    (message,) = smtp_server.wait_for(1, to=viewer_user.email)
    assert message["Subject"] == "[Opsdeck] Reset your Opsdeck password"
    text = text_body(message)
    link = LINK.search(text).group(0)
    assert link.startswith(settings.PORTAL_URL + "/accounts/password-reset/")
    assert viewer_user.username in text
    assert "10.0.0.8" in text
    assert "30 minutes" in text
    assert f'href="{link}"' in html_body(message)
    sent = AuditEvent.objects.get(action="auth.password_reset.sent")
    assert (sent.object_id, sent.ip) == (str(viewer_user.pk), "10.0.0.8")
    assert link.rsplit("/", 2)[-2] not in sent.changes_text

    browser = Client()
    landing = browser.get(_path(link))
    assert landing.status_code == 302
    token = _path(link).rstrip("/").rsplit("/", 1)[-1]
    assert token not in landing["Location"]  # the token leaves the address at once
    form_page = browser.get(landing["Location"])
    assert landing["Referrer-Policy"] == form_page["Referrer-Policy"] == "same-origin"
    assert token not in form_page.content.decode()
    done = browser.post(landing["Location"], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert (done.status_code, done["Location"]) == (302, DONE)
    viewer_user.refresh_from_db()
    assert viewer_user.check_password(NEW_PASSWORD)
    assert not _is_signed_in(browser)  # no automatic sign-in

    again = _open_link(Client(), link)
    assert "This link does not work" in again.content.decode()
    assert "Set a new password" not in again.content.decode()


@pytest.mark.django_db
def test_a_weak_new_password_is_refused_and_the_link_still_works(viewer_user):
    link = password_reset_link(user=viewer_user)
    browser = Client()
    form_page = _open_link(browser, link)

    refused = browser.post(form_page.wsgi_request.path, {"new_password1": "short", "new_password2": "short"})

    assert refused.status_code == 200
    assert "This password is too short" in refused.content.decode()
    viewer_user.refresh_from_db()
    assert viewer_user.check_password(DEFAULT_PASSWORD)
    assert _set_password(browser, link).status_code == 302


@pytest.mark.django_db
def test_an_expired_link_fails(viewer_user):
    with time_machine.travel(START, tick=False) as clock:
        link = password_reset_link(user=viewer_user)
        clock.shift(timedelta(minutes=29))
        assert "Set a new password" in _open_link(Client(), link).content.decode()
        clock.shift(timedelta(minutes=2))

        expired = _open_link(Client(), link)

    assert "This link does not work" in expired.content.decode()
    assert "a link works for 30 minutes" in expired.content.decode()


@pytest.mark.django_db
def test_a_link_stops_working_when_the_account_is_deactivated(viewer_user):
    link = password_reset_link(user=viewer_user)
    viewer_user.is_active = False
    viewer_user.save()

    assert "This link does not work" in _open_link(Client(), link).content.decode()


@pytest.mark.django_db
def test_a_tampered_link_fails(viewer_user):
    link = password_reset_link(user=viewer_user)
    tampered = link[:-3] + ("a" if link[-3] != "a" else "b") + link[-2:]

    assert "This link does not work" in _open_link(Client(), tampered).content.decode()


# --- Rate limits


@pytest.mark.django_db
def test_too_many_requests_from_one_address_get_a_429_naming_the_limit(settings, django_capture_on_commit_callbacks):
    settings.PASSWORD_RESET_RATE_PER_IP = "2/hour"
    with django_capture_on_commit_callbacks() as callbacks:
        answers = [_request(f"person{number}@example.test", ip="10.0.1.1") for number in range(4)]
        elsewhere = _request("person9@example.test", ip="10.0.1.2")

    assert [answer.status_code for answer in answers] == [302, 302, 429, 429]
    assert elsewhere.status_code == 302
    refused = answers[2]
    assert "at most 2 per hour are accepted from one address" in refused.content.decode()
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert len(callbacks) == 3  # the refused requests queued nothing
    (row,) = AuditEvent.objects.filter(action="auth.password_reset.refused")
    assert row.outcome == "denied"
    assert (row.changes["limit"], row.changes["rate"], row.changes["client"]) == ("ip", "2 per hour", "10.0.1.1")
    assert AuditEvent.objects.filter(action="auth.password_reset.requested").count() == 3


@pytest.mark.django_db
def test_too_many_requests_for_one_address_get_the_usual_answer_and_send_nothing(
    settings, viewer_user, django_capture_on_commit_callbacks
):
    settings.PASSWORD_RESET_RATE_PER_ADDRESS = "2/hour"
    with django_capture_on_commit_callbacks() as callbacks:
        answers = [_request(viewer_user.email, ip=f"10.0.2.{number}") for number in range(1, 5)]

    assert {(answer.status_code, answer["Location"]) for answer in answers} == {(302, SENT)}
    assert len(callbacks) == 2
    (row,) = AuditEvent.objects.filter(action="auth.password_reset.refused")
    assert (row.changes["limit"], row.changes["address"]) == ("address", viewer_user.email)
    assert AuditEvent.objects.filter(action="auth.password_reset.requested").count() == 2


@pytest.mark.django_db
def test_the_limits_start_again_in_the_next_window(settings):
    settings.PASSWORD_RESET_RATE_PER_IP = "1/hour"
    with time_machine.travel(START, tick=False) as clock:
        assert _request("a@example.test").status_code == 302
        assert _request("b@example.test").status_code == 429
        clock.shift(timedelta(hours=1))
        assert _request("c@example.test").status_code == 302


# --- After the new password: MFA, sessions, tokens


@pytest.mark.django_db
def test_the_next_sign_in_still_asks_for_the_authenticator_code(viewer_user):
    device = totp_device_create(viewer_user)
    _set_password(Client(), password_reset_link(user=viewer_user))

    browser = Client()
    response = browser.post(LOGIN, {"username": viewer_user.username, "password": NEW_PASSWORD})

    assert response.status_code == 302
    assert response["Location"].startswith(OTP_STEP)
    assert not _is_signed_in(browser)
    device.refresh_from_db()
    assert device.confirmed
    verified = browser.post(OTP_STEP, {"code": totp_code(device.key)})
    assert verified.status_code == 302
    assert _is_signed_in(browser)


@pytest.mark.django_db
def test_a_lockout_from_the_forgotten_password_ends_with_the_reset(settings, viewer_user):
    guesser = Client(REMOTE_ADDR="10.0.3.1")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        guesser.post(LOGIN, {"username": viewer_user.username, "password": "was-it-this-one"})
    assert guesser.post(LOGIN, {"username": viewer_user.username, "password": DEFAULT_PASSWORD}).status_code == 429

    _set_password(Client(), password_reset_link(user=viewer_user))

    response = guesser.post(LOGIN, {"username": viewer_user.username, "password": NEW_PASSWORD})
    assert response.status_code == 302
    assert AuditEvent.objects.get(action="auth.password_reset.completed").changes["cleared_failed_attempts"] == 1


@pytest.mark.django_db
def test_every_session_is_signed_out_and_listed_on_the_done_page(viewer_user):
    laptop, phone = _sign_in(viewer_user), _sign_in(viewer_user)
    assert UserSession.objects.filter(user=viewer_user).count() == 2
    viewer_user.refresh_from_db()  # the link covers the last sign-in

    resetter = Client()
    _set_password(resetter, password_reset_link(user=viewer_user))
    done = resetter.get(DONE).content.decode()

    assert not _is_signed_in(laptop)
    assert not _is_signed_in(phone)
    assert not UserSession.objects.filter(user=viewer_user).exists()
    assert "2 browsers signed in to your account were signed out:" in done
    assert done.count("Firefox on Linux from 127.0.0.1") == 2
    completed = AuditEvent.objects.get(action="auth.password_reset.completed")
    assert completed.object_id == str(viewer_user.pk)
    assert completed.actor_id == viewer_user.pk
    assert completed.changes == {"signed_out": 2, "cleared_failed_attempts": 0, "mfa": False}
    assert NEW_PASSWORD not in completed.changes_text
    ended = AuditEvent.objects.get(action="auth.session.ended")
    assert ended.changes["count"] == 2


@pytest.mark.django_db
def test_tokens_are_listed_and_revoked_only_when_chosen(viewer_user):
    kept = token_create(owner=viewer_user, name="ci pipeline", scopes=["read"], expires_in_days=30).token
    resetter = Client()
    _set_password(resetter, password_reset_link(user=viewer_user))

    done = resetter.get(DONE).content.decode()
    assert "ci pipeline" in done
    assert kept.prefix in done
    kept.refresh_from_db()
    assert kept.revoked is None  # not without the choice

    response = resetter.post(DONE)

    assert (response.status_code, response["Location"]) == (302, DONE)
    kept.refresh_from_db()
    assert kept.revoked is not None
    assert not ApiToken.objects.filter(owner=viewer_user, revoked__isnull=True).exists()
    revoked = AuditEvent.objects.get(action="auth.token.revoked")
    assert revoked.actor_id == viewer_user.pk
    assert revoked.object_id == str(kept.pk)
    after = resetter.get(DONE).content.decode()
    assert "Revoked 1 API token." in after
    assert "Your account has no API tokens that work." in after


@pytest.mark.django_db
def test_the_done_page_serves_only_the_browser_that_reset_and_only_for_a_while(viewer_user):
    token = token_create(owner=viewer_user, name="notebook", scopes=["read"], expires_in_days=30).token
    stranger = Client()
    assert stranger.get(DONE)["Location"] == LOGIN
    assert stranger.post(DONE)["Location"] == LOGIN

    with time_machine.travel(START, tick=False) as clock:
        resetter = Client()
        _set_password(resetter, password_reset_link(user=viewer_user))
        assert resetter.get(DONE).status_code == 200
        clock.shift(timedelta(minutes=16))
        assert resetter.post(DONE)["Location"] == LOGIN

    token.refresh_from_db()
    assert token.revoked is None


@pytest.mark.django_db
def test_a_signed_in_browser_can_reset_its_own_password(viewer_user):
    browser = _sign_in(viewer_user)
    viewer_user.refresh_from_db()

    response = _set_password(browser, password_reset_link(user=viewer_user))

    assert (response.status_code, response["Location"]) == (302, DONE)
    assert browser.get(DONE).status_code == 200
    assert not _is_signed_in(browser)
    viewer_user.refresh_from_db()
    assert viewer_user.check_password(NEW_PASSWORD)


# --- Settings


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"PASSWORD_RESET_TIMEOUT_MINUTES": "0"}, "PASSWORD_RESET_TIMEOUT_MINUTES must be at least 1"),
        ({"PASSWORD_RESET_RATE_PER_IP": "5 an hour"}, "PASSWORD_RESET_RATE_PER_IP must look like '1000/min'"),
        ({"PASSWORD_RESET_RATE_PER_ADDRESS": "0/hour"}, "PASSWORD_RESET_RATE_PER_ADDRESS must allow at least 1"),
    ],
)
def test_bad_password_reset_settings_stop_the_portal_naming_the_variable(tmp_path, variables, expected):
    result = manage("check", environment=clean_environment(OPSDECK_DATA_DIR=str(tmp_path), **variables))
    assert result.returncode != 0
    assert expected in result.stderr


def test_the_reset_link_lifetime_is_read_in_minutes(tmp_path):
    environment = clean_environment(OPSDECK_DATA_DIR=str(tmp_path), PASSWORD_RESET_TIMEOUT_MINUTES="45")
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.PASSWORD_RESET_TIMEOUT)",
        environment=environment,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "2700"
