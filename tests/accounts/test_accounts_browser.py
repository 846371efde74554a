"""Two-step sign-in and forced enrollment in a real browser (headless Chromium)."""

from base64 import b32decode
from binascii import hexlify

import pytest

from tests.mfa import browser_admin_sign_in, totp_code, totp_device_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def superuser_key(superuser):
    return totp_device_create(superuser).key


def test_staff_signs_in_to_the_admin_with_password_then_code(live_server, superuser, superuser_key, password, chromium):
    page = chromium.new_page()
    page.goto(live_server.url + "/admin/")
    page.wait_for_url("**/accounts/login/?next=%2Fadmin%2F")  # the admin signs in on the portal's page
    browser_admin_sign_in(page, live_server.url, username=superuser.username, password=password, key_hex=superuser_key)
    assert page.locator("#site-name").inner_text() == "Opsdeck"
    page.close()


def test_staff_without_authenticator_is_forced_to_enroll_by_typing_the_manual_key(
    live_server, admin_user, password, chromium
):
    page = chromium.new_page()
    page.goto(live_server.url + "/accounts/login/?next=/admin/")
    page.fill("#id_username", admin_user.username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/account/mfa/enroll/?next=%2Fadmin%2F")
    # Nothing else is reachable before enrolling.
    page.goto(live_server.url + "/dashboard/")
    page.wait_for_url("**/account/mfa/enroll/?next=%2Fdashboard%2F")
    page.goto(live_server.url + "/account/mfa/enroll/?next=/admin/")
    assert page.locator(".qr svg").count() == 1

    key = page.locator("#manual-key").inner_text().strip()
    page.fill("#id_code", totp_code(hexlify(b32decode(key)).decode()))
    page.click("main button[type=submit]")  # the sidebar has a sign-out button too
    page.wait_for_url("**/account/mfa/recovery-codes/?next=%2Fadmin%2F")
    assert page.locator("#recovery-codes li").count() == 10
    with page.expect_download() as download_info:
        page.click("#download-codes")
    assert download_info.value.suggested_filename == "opsdeck-recovery-codes.txt"
    page.click("text=I have saved these codes")
    page.wait_for_url(live_server.url + "/admin/")
    assert page.locator("#site-name").inner_text() == "Opsdeck"
    page.close()
